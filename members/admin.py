from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MinValueValidator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.admin import ConsoleAdmin, ReadOnlyAdmin, TabularInline
from loyalty.errors import LoyaltyError
from members.errors import TierInactive, TierOverrideExpired, TierOverridePending
from members.models import (
    EARLIEST_AS_OF,
    AssetSnapshot,
    Member,
    MemberTier,
    Segment,
    Tier,
    TierBenefit,
    TierEvaluationRun,
    TierHistory,
    TierOverride,
)
from members.segments import segment_rule_clean
from members.selectors import member_tier_standing
from members.services.evaluation import tier_evaluation_resume, tier_evaluation_start
from members.services.ladder import tier_save
from members.services.members import member_close, member_freeze, member_reopen, member_unfreeze
from members.services.overrides import (
    tier_override_approve,
    tier_override_reject,
    tier_override_request,
)
from members.services.segments import segment_create, segment_refresh, segment_update
from members.services.simulation import tiers_simulate


class AssetSnapshotInline(TabularInline):
    model = AssetSnapshot
    extra = 0
    ordering = ["-as_of"]
    fields = ["as_of", "deposits", "wealth", "funds", "insurance", "loans", "aum", "contribution"]
    readonly_fields = ["aum"]
    max_num = 60


class TierHistoryInline(TabularInline):
    model = TierHistory
    fk_name = "member"
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-occurred_at"]
    fields = ["occurred_at", "from_tier", "to_tier", "reason", "as_of", "avg_aum", "contribution"]
    readonly_fields = fields  # type: ignore[assignment]  # flat names, valid for both

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Member)
class MemberAdmin(ConsoleAdmin):
    list_display = ["customer_no", "name", "status", "city", "branch_code", "joined_at"]
    list_filter = [
        "status",
        "gender",
        "risk_level",
        "preferred_language",
        "marketing_consent",
        "city",
    ]
    search_fields = ["customer_no", "name", "email"]
    date_hierarchy = "joined_at"
    readonly_fields = [
        "status",
        "status_changed_at",
        "current_tier",
        "created_at",
        "updated_at",
    ]
    inlines = [AssetSnapshotInline, TierHistoryInline]
    actions = ["freeze", "unfreeze", "close", "reopen"]
    list_per_page = 50

    def has_delete_permission(self, request, obj=None) -> bool:
        # Members are closed, never deleted: their ledger, history and messages refer to them.
        return False

    @admin.display(description=_("tier"))
    def current_tier(self, member) -> str:
        standing = member_tier_standing(member=member)
        tier = standing["tier"]
        if tier is None:
            return "-"
        warning = standing["downgrade_warning"]
        suffix = f" ({warning['detail']})" if warning else ""
        return f"{tier.code} {tier.name} · {standing['since']}{suffix}"

    def get_readonly_fields(self, request, obj=None):
        # The bank's customer number never changes once the member exists.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "customer_no"] if obj else fields

    def _status_action(self, request, queryset, service, done_message):
        count = 0
        for member in queryset.order_by("pk"):
            try:
                service(member=member, actor=request.user, reason=str(_("Admin action")))
                count += 1
            except LoyaltyError as exc:  # report each refusal and go on with the rest
                self.message_user(request, f"{member.customer_no}: {exc}", messages.ERROR)
        self.message_user(request, done_message % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Freeze selected members"), permissions=["change"])
    def freeze(self, request, queryset):
        self._status_action(request, queryset, member_freeze, _("%(count)s members frozen."))

    @admin.action(description=_("Unfreeze selected members"), permissions=["change"])
    def unfreeze(self, request, queryset):
        self._status_action(request, queryset, member_unfreeze, _("%(count)s members unfrozen."))

    @admin.action(
        description=_("Close selected members (points forfeited after the notice period)"),
        permissions=["change"],
    )
    def close(self, request, queryset):
        self._status_action(request, queryset, member_close, _("%(count)s members closed."))

    @admin.action(
        description=_("Reopen selected members (within the notice period)"),
        permissions=["change"],
    )
    def reopen(self, request, queryset):
        self._status_action(request, queryset, member_reopen, _("%(count)s members reopened."))


@admin.register(AssetSnapshot)
class AssetSnapshotAdmin(ConsoleAdmin):
    list_display = ["member", "as_of", "aum", "contribution", "loans"]
    list_filter = ["as_of"]
    search_fields = ["member__customer_no", "member__name"]
    raw_id_fields = ["member"]
    date_hierarchy = "as_of"


class TierBenefitInline(TabularInline):
    model = TierBenefit
    extra = 0
    fields = ["kind", "text_en", "text_zh_hans", "position"]


class TierSimulateForm(forms.Form):
    as_of = forms.DateField(
        label=_("As of"),
        required=False,
        help_text=_("Empty: the end of the previous month."),
        validators=[MinValueValidator(EARLIEST_AS_OF)],
    )


class TierProposalForm(forms.Form):
    code = forms.CharField(widget=forms.HiddenInput)
    min_avg_aum = forms.DecimalField(
        label=_("Minimum average AUM"), required=False, min_value=0, max_digits=18, decimal_places=2
    )
    min_contribution = forms.DecimalField(
        label=_("Minimum contribution"),
        required=False,
        min_value=0,
        max_digits=18,
        decimal_places=2,
    )
    rule = forms.ChoiceField(label=_("Rule"), choices=Tier.Rule.choices)


@admin.register(Tier)
class TierAdmin(ConsoleAdmin):
    list_display = [
        "code",
        "name_en",
        "name_zh_hans",
        "rank",
        "min_avg_aum",
        "min_contribution",
        "rule",
        "window_months",
        "multiplier",
        "grace_periods",
        "downgrade_mode",
        "active",
    ]
    list_filter = ["active", "downgrade_mode"]
    search_fields = ["code", "name_en", "name_zh_hans"]
    inlines = [TierBenefitInline]
    fieldsets = [
        (None, {"fields": ["code", "name_en", "name_zh_hans", "rank", "active"]}),
        (
            _("Qualification"),
            {
                "description": _(
                    "A member qualifies for the highest active tier whose thresholds their "
                    "average AUM and total contribution over the window meet. Leave a threshold "
                    "empty when it does not apply; the lowest tier usually has none."
                ),
                "fields": ["window_months", "min_avg_aum", "min_contribution", "rule"],
            },
        ),
        (_("Earning"), {"fields": ["multiplier"]}),
        (
            _("Downgrades"),
            {
                "description": _(
                    "Upgrades apply at the evaluation that qualifies the member. A downgrade "
                    "waits for 'grace periods' consecutive failing evaluations. 'One tier at a "
                    "time' is the default because a temporary dip (a maturing deposit, a large "
                    "purchase) then costs one rung, not the whole relationship; 'straight to "
                    "the qualified tier' suits tiers whose benefits are costly to keep giving."
                ),
                "fields": ["grace_periods", "downgrade_mode"],
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        # Members, history and overrides refer to the code: it never changes once created.
        return ["code"] if obj else []

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deactivate instead: history and members keep pointing at the tier.
        return False

    def save_model(self, request, obj, form, change) -> None:
        """Nothing yet: :meth:`save_related` saves the tier with its benefits, one audit row."""

    def save_related(self, request, form, formsets, change) -> None:
        benefits: list[TierBenefit] = []
        removed: list[TierBenefit] = []
        for formset in formsets:  # the benefits inline, the only one
            benefits += formset.save(commit=False)
            removed += formset.deleted_objects
        tier_save(
            tier=form.instance, benefits=benefits, removed_benefits=removed, actor=request.user
        )

    def get_urls(self):
        return [
            path(
                "simulate/",
                self.admin_site.admin_view(self.simulate_view),
                name="members_tier_simulate",
            ),
            *super().get_urls(),
        ]

    def simulate_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        tiers = list(Tier.objects.filter(active=True).order_by("rank"))
        initial = [
            {
                "code": tier.code,
                "min_avg_aum": tier.min_avg_aum,
                "min_contribution": tier.min_contribution,
                "rule": tier.rule,
            }
            for tier in tiers
        ]
        formset_class = forms.formset_factory(TierProposalForm, extra=0)
        result = None
        if request.method == "POST":
            form = TierSimulateForm(request.POST)
            formset = formset_class(request.POST)
            if form.is_valid() and formset.is_valid():
                proposals = {}
                for row in formset.cleaned_data:
                    if row.get("code"):
                        proposals[row.pop("code")] = row
                try:
                    result = tiers_simulate(
                        as_of=form.cleaned_data.get("as_of"), proposals=proposals
                    )
                except LoyaltyError as exc:
                    self.message_user(request, str(exc.detail), messages.ERROR)
        else:
            form = TierSimulateForm()
            formset = formset_class(initial=initial)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Simulate thresholds"),
            "form": form,
            "formset": formset,
            "result": result,
        }
        return TemplateResponse(request, "admin/members/tier/simulate.html", context)


@admin.register(TierEvaluationRun)
class TierEvaluationRunAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "as_of",
        "status",
        "trigger",
        "progress",
        "upgraded",
        "downgraded",
        "unchanged",
        "finished_at",
    ]
    list_filter = ["status", "trigger"]
    readonly_fields = [
        "run_id",
        "as_of",
        "status",
        "trigger",
        "requested_by",
        "chunk_size",
        "total",
        "processed",
        "upgraded",
        "downgraded",
        "unchanged",
        "created_at",
        "started_at",
        "finished_at",
        "error",
    ]
    actions = ["resume"]

    @admin.display(description=_("progress"))
    def progress(self, run) -> str:
        percent = (100 * run.processed // run.total) if run.total else 100
        return f"{run.processed} / {run.total} ({percent}%)"

    def has_change_permission(self, request, obj=None) -> bool:
        # Needed to offer the "resume" action; the form itself stays read-only.
        return obj is None and request.user.has_perm("members.add_tierevaluationrun")

    def get_urls(self):
        return [
            path(
                "start/",
                self.admin_site.admin_view(self.start_view),
                name="members_tierevaluationrun_start",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_start": request.user.has_perm("members.add_tierevaluationrun"),
        }
        return super().changelist_view(request, extra_context)

    def start_view(self, request):
        if request.method != "POST" or not request.user.has_perm("members.add_tierevaluationrun"):
            raise PermissionDenied
        try:
            run = tier_evaluation_start(actor=request.user)
            self.message_user(
                request, _("Evaluation %(run)s queued.") % {"run": run.run_id}, messages.SUCCESS
            )
        except LoyaltyError as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:members_tierevaluationrun_changelist"))

    @admin.action(
        description=_("Resume selected runs (failed, or stuck without workers)"),
        permissions=["change"],
    )
    def resume(self, request, queryset):
        for run in queryset:
            try:
                tier_evaluation_resume(run_id=run.run_id, actor=request.user)
            except LoyaltyError as exc:
                self.message_user(request, f"{run.run_id}: {exc.detail}", messages.ERROR)


class TierOverrideRequestForm(forms.ModelForm):
    class Meta:
        model = TierOverride
        fields = ["member", "tier", "reason", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        member, tier = cleaned.get("member"), cleaned.get("tier")
        expires_at = cleaned.get("expires_at")
        if tier is not None and not tier.active:
            self.add_error("tier", TierInactive.default_detail)
        if expires_at is not None and expires_at <= timezone.now():
            self.add_error("expires_at", TierOverrideExpired.default_detail)
        if member is not None and member.tier_overrides.filter(status="pending").exists():
            self.add_error("member", TierOverridePending.default_detail)
        return cleaned


@admin.register(TierOverride)
class TierOverrideAdmin(ConsoleAdmin):
    list_display = [
        "member",
        "tier",
        "status",
        "expires_at",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "tier"]
    search_fields = ["member__customer_no", "member__name", "reason"]
    raw_id_fields = ["member"]
    fields = ["member", "tier", "reason", "expires_at"]
    form = TierOverrideRequestForm
    actions = ["approve", "reject"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "member",
            "tier",
            "reason",
            "expires_at",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def has_change_permission(self, request, obj=None) -> bool:
        # Decisions go through the approve and reject actions, never an edit.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("members.approve_tieroverride")

    def save_model(self, request, obj, form, change) -> None:
        override = tier_override_request(
            member=form.cleaned_data["member"],
            tier=form.cleaned_data["tier"],
            reason=form.cleaned_data["reason"],
            expires_at=form.cleaned_data["expires_at"],
            actor=request.user,
        )
        obj.pk = override.pk

    def _decide(self, request, queryset, service, done):
        count = 0
        for override in queryset.order_by("requested_at"):
            try:
                service(override_id=override.id, actor=request.user)
                count += 1
            except LoyaltyError as exc:
                self.message_user(
                    request, f"{override.member.customer_no}: {exc.detail}", messages.ERROR
                )
        self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Approve selected overrides"), permissions=["approve"])
    def approve(self, request, queryset):
        self._decide(request, queryset, tier_override_approve, _("%(count)s overrides approved."))

    @admin.action(description=_("Reject selected overrides"), permissions=["approve"])
    def reject(self, request, queryset):
        self._decide(request, queryset, tier_override_reject, _("%(count)s overrides rejected."))


@admin.register(TierHistory)
class TierHistoryAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "member", "from_tier", "to_tier", "reason", "as_of", "avg_aum"]
    list_filter = ["reason", "to_tier"]
    search_fields = ["member__customer_no", "member__name"]
    date_hierarchy = "occurred_at"
    list_select_related = ["member", "from_tier", "to_tier"]


@admin.register(MemberTier)
class MemberTierAdmin(ReadOnlyAdmin):
    list_display = ["member", "tier", "since", "failing_count", "last_as_of", "override"]
    list_filter = ["tier", "failing_count"]
    search_fields = ["member__customer_no", "member__name"]
    list_select_related = ["member", "tier"]


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name_en", "name_zh_hans", "description_en", "description_zh_hans", "rule"]
        help_texts = {
            "rule": _(
                'An object of conditions, all of which must hold, e.g. {"tiers": ["GOLD"], '
                '"cities": ["Shanghai"], "age_min": 30}. Keys: tiers, aum_min, aum_max, '
                "contribution_min, age_min, age_max, genders, cities, branch_codes, "
                "credit_grades, risk_levels, holds, inactive_days_min, value_score_min, "
                "churn_risk."
            )
        }

    def clean_rule(self):
        try:
            return segment_rule_clean(self.cleaned_data["rule"])
        except DjangoValidationError as refused:
            raise forms.ValidationError(
                [
                    f"{part}: {message}"
                    for part, messages in refused.message_dict.items()
                    for message in messages
                ]
            ) from None


@admin.register(Segment)
class SegmentAdmin(ConsoleAdmin):
    form = SegmentForm
    list_display = ["name_en", "name_zh_hans", "member_count", "refreshed_at"]
    search_fields = ["name_en", "name_zh_hans"]
    readonly_fields = ["member_count", "refreshed_at", "created_by"]
    actions = ["refresh"]

    def save_model(self, request, obj, form, change) -> None:
        fields = {name: form.cleaned_data[name] for name in SegmentForm.Meta.fields}
        if change:
            segment_update(segment=obj, actor=request.user, changes=fields)
        else:
            saved = segment_create(actor=request.user, **fields)
            obj.pk = saved.pk

    @admin.action(description=_("Refresh the members of the selected segments"))
    def refresh(self, request, queryset):
        for segment in queryset:
            segment_refresh(segment=segment)
        self.message_user(request, _("%(count)s segments refreshed.") % {"count": queryset.count()})
