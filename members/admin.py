import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MinValueValidator
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from loyalty.admin import (
    CONFIRM_LIST_LIMIT,
    ConsoleAdmin,
    ConsoleImportMixin,
    ReadOnlyAdmin,
    TabularInline,
    confirmation_page,
    confirmed,
)
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
    mask_phone,
)
from members.resources import (
    CONTACT_PERMISSION,
    AssetSnapshotResource,
    MemberResource,
    mask_email,
)
from members.segments import segment_rule_clean
from members.selectors import (
    customer_view_balance,
    customer_view_sections,
    member_tier_standing,
    members_points_balances,
    members_points_total,
)
from members.services.evaluation import tier_evaluation_resume, tier_evaluation_start
from members.services.ladder import tier_save
from members.services.members import (
    MEMBER_FIELDS,
    closure_notice,
    member_close,
    member_freeze,
    member_reopen,
    member_unfreeze,
    member_upsert,
)
from members.services.overrides import (
    tier_override_approve,
    tier_override_reject,
    tier_override_request,
)
from members.services.segments import segment_create, segment_refresh, segment_update
from members.services.simulation import tiers_simulate


def contact_visible(request) -> bool:
    """Whether the signed-in staff member may see members' phone and email unmasked."""
    return request.user.has_perm(CONTACT_PERMISSION)


class AssetSnapshotInline(TabularInline):
    """Core banking's figures: shown, never edited or deleted here (they arrive by file or API)."""

    model = AssetSnapshot
    extra = 0
    ordering = ["-as_of"]
    fields = ["as_of", "deposits", "wealth", "funds", "insurance", "loans", "aum", "contribution"]
    readonly_fields = fields  # type: ignore[assignment]  # flat names, valid for both
    max_num = 0
    can_delete = False
    verbose_name_plural = _("latest asset snapshots")

    def get_queryset(self, request):
        # The newest twelve: an inline cannot page, and years of snapshots would make the
        # form heavy. The customer view links to the full list.
        latest = (
            AssetSnapshot.objects.filter(member=OuterRef("member"))
            .order_by("-as_of")
            .values("pk")[:12]
        )
        return super().get_queryset(request).filter(pk__in=Subquery(latest))

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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


class AllOrNothingImportMixin(ConsoleImportMixin):
    """A confirmed import that was refused (a row turned invalid after its preview) says so
    row by row, back on the import page, and logs nothing."""

    def process_result(self, result, request):
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        problems = [
            f"{_('Row %(number)s') % {'number': row.number}}: "
            + "; ".join(f"{field}: {' '.join(errors)}" for field, errors in row.error_dict.items())
            for row in result.invalid_rows
        ] + [
            f"{_('Row %(number)s') % {'number': number}}: {errors[0].error}"
            for number, errors in result.row_errors()
        ]
        self.message_user(
            request,
            _("Nothing was imported: %(problems)s") % {"problems": " · ".join(problems)},
            messages.ERROR,
        )
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_import"))


class StatusChangeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        help_text=_("Recorded in the audit trail with your name."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give the reason for this change."))
        return reason


@admin.register(Member)
class MemberAdmin(AllOrNothingImportMixin, ConsoleAdmin):
    """Members by customer number. The list's customer number opens the customer view (one page
    with everything the programme knows about the member); contact data is masked for staff
    without ``members.view_member_contact`` in the list, on every page and in exports. Imports
    go through ``member_upsert`` (members.resources); closing and freezing ask to confirm."""

    resource_classes = [MemberResource]
    list_display = [
        "customer_link",
        "name",
        "status",
        "contact_phone",
        "city",
        "branch_code",
        "joined_at",
    ]
    list_display_links = None
    list_filter = [
        "status",
        "gender",
        "risk_level",
        "preferred_language",
        "marketing_consent",
        "city",
    ]
    search_fields = ["customer_no", "name"]
    date_hierarchy = "joined_at"
    readonly_fields = [
        "status",
        "status_changed_at",
        "current_tier",
        "created_at",
        "updated_at",
        "phone_masked",
        "email_masked",
    ]
    inlines = [AssetSnapshotInline, TierHistoryInline]
    actions = ["freeze", "unfreeze", "close", "reopen"]
    list_per_page = 50

    def has_delete_permission(self, request, obj=None) -> bool:
        # Members are closed, never deleted: their ledger, history and messages refer to them.
        return False

    def has_import_permission(self, request) -> bool:
        # Creates and updates members, contact data included.
        return all(
            request.user.has_perm(perm)
            for perm in ("members.add_member", "members.change_member", CONTACT_PERMISSION)
        )

    def get_resource_kwargs(self, request, *args, **kwargs):
        return {**kwargs, "contact_visible": contact_visible(request)}

    def get_search_fields(self, request):
        # Searching by contact data would reveal it to whoever may not see it.
        fields = list(super().get_search_fields(request))
        return [*fields, "email", "phone"] if contact_visible(request) else fields

    def get_fields(self, request, obj=None):
        masked = {"phone": "phone_masked", "email": "email_masked"}
        fields = [name for name in super().get_fields(request, obj) if name not in masked.values()]
        if contact_visible(request):
            return fields
        return [masked.get(name, name) for name in fields]

    def get_list_display(self, request):
        if contact_visible(request):
            return self.list_display
        return ["phone_masked" if name == "contact_phone" else name for name in self.list_display]

    @admin.display(description=_("customer number"), ordering="customer_no")
    def customer_link(self, member) -> str:
        url = reverse("admin:members_member_customer", args=[member.customer_no])
        return format_html(
            '<a href="{}" class="font-medium text-primary-600 dark:text-primary-500">{}</a>',
            url,
            member.customer_no,
        )

    @admin.display(description=_("phone"))
    def contact_phone(self, member) -> str:
        return member.phone

    @admin.display(description=_("phone"))
    def phone_masked(self, member) -> str:
        return mask_phone(member.phone)

    @admin.display(description=_("email"))
    def email_masked(self, member) -> str:
        return mask_email(member.email)

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
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status == Member.Status.CLOSED:
            # A closed member changes only by reopening (the action), never by an edit.
            return [*fields, "customer_no", *(n for n in MEMBER_FIELDS if n not in fields)]
        # The bank's customer number never changes once the member exists.
        return [*fields, "customer_no"] if obj else fields

    def save_model(self, request, obj, form, change) -> None:
        # Through the service the CRM uses: validated, audited, one path for every change.
        fields = {name: form.cleaned_data[name] for name in MEMBER_FIELDS if name in form.fields}
        member, _created = member_upsert(customer_no=obj.customer_no, actor=request.user, **fields)
        obj.pk = member.pk

    # --- The customer view ----------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "customer/<str:customer_no>/",
                self.admin_site.admin_view(self.customer_view),
                name="members_member_customer",
            ),
            *super().get_urls(),
        ]

    def customer_view(self, request, customer_no: str):
        member = Member.objects.filter(customer_no=customer_no).first()
        if member is None:
            raise Http404(_("No member has this customer number."))
        if not self.has_view_permission(request, member):
            raise PermissionDenied
        visible = contact_visible(request)
        user = request.user
        sections = customer_view_sections(member=member)
        panels = [
            panel
            for panel in (
                build(request, member, sections)
                for build in CUSTOMER_PANELS
                if user.has_perm(build.permission)  # type: ignore[attr-defined]
            )
            if panel is not None
        ]
        can_see_points = user.has_perm("points.view_account")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Customer %(customer_no)s") % {"customer_no": member.customer_no},
            "member": member,
            "profile": _profile_rows(member, contact_visible=visible),
            "contact_visible": visible,
            "standing": member_tier_standing(member=member),
            "balance": customer_view_balance(member=member) if can_see_points else None,
            "panels": panels,
            "change_url": reverse("admin:members_member_change", args=[member.pk])
            if self.has_change_permission(request, member)
            else None,
        }
        return TemplateResponse(request, "admin/members/member/customer.html", context)

    # --- Status actions -------------------------------------------------------------------

    def _status_action(self, request, queryset, service, done_message, reason=None):
        count = 0
        for member in queryset.order_by("pk"):
            try:
                service(
                    member=member,
                    actor=request.user,
                    reason=reason or str(_("Admin action")),
                )
                count += 1
            except LoyaltyError as exc:  # report each refusal and go on with the rest
                self.message_user(request, f"{member.customer_no}: {exc}", messages.ERROR)
        self.message_user(request, done_message % {"count": count}, messages.SUCCESS)

    def _confirmed_status_action(
        self, request, queryset, *, service, done_message, title, warning, forfeits, confirm
    ):
        """Nothing happens until the confirmation page (the members, their balances, a reason)
        is submitted with ``confirm``; then the service runs for each member."""
        form = StatusChangeForm(request.POST if confirmed(request) else None)
        if form.is_valid():
            self._status_action(
                request, queryset, service, done_message, reason=form.cleaned_data["reason"]
            )
            return None
        count = queryset.count()
        listed = list(queryset.order_by("customer_no")[:CONFIRM_LIST_LIMIT])
        balances = members_points_balances(member_ids=[member.pk for member in listed])
        return confirmation_page(
            request,
            self,
            title=title,
            intro=warning,
            rows=[],
            count=count,
            submit=confirm % {"count": count},
            action_name=request.POST.get("action", ""),
            form=form,
            back=request.get_full_path(),
            danger=True,
            template="admin/members/member/status_confirm.html",
            forfeits=forfeits,
            show_balances=bool(balances) or forfeits,
            members=[(member, balances.get(member.pk, 0)) for member in listed],
            more=count - len(listed),
            total=members_points_total(members=queryset) if forfeits else None,
            notice_days=closure_notice().days,
        )

    @admin.action(description=_("Freeze selected members"), permissions=["change"])
    def freeze(self, request, queryset):
        return self._confirmed_status_action(
            request,
            queryset,
            service=member_freeze,
            done_message=_("%(count)s members frozen."),
            title=_("Freeze members"),
            confirm=_("Yes, freeze %(count)s members"),
            warning=_("Frozen members neither earn nor redeem points until they are unfrozen."),
            forfeits=False,
        )

    @admin.action(description=_("Unfreeze selected members"), permissions=["change"])
    def unfreeze(self, request, queryset):
        self._status_action(request, queryset, member_unfreeze, _("%(count)s members unfrozen."))

    @admin.action(
        description=_("Close selected members (points forfeited after the notice period)"),
        permissions=["change"],
    )
    def close(self, request, queryset):
        return self._confirmed_status_action(
            request,
            queryset,
            service=member_close,
            done_message=_("%(count)s members closed."),
            title=_("Close members"),
            confirm=_("Yes, close %(count)s members"),
            warning=_(
                "Closed members neither earn nor redeem. Each is told; their balance below is "
                "forfeited when the notice period ends, unless the membership is reopened "
                "before then."
            ),
            forfeits=True,
        )

    @admin.action(
        description=_("Reopen selected members (within the notice period)"),
        permissions=["change"],
    )
    def reopen(self, request, queryset):
        self._status_action(request, queryset, member_reopen, _("%(count)s members reopened."))


# --- Panels of the customer view ------------------------------------------------------------
#
# One function per panel: it reads the rows ``customer_view_sections`` fetched and says which
# columns they show; it is listed only for staff holding its model's view permission. The
# "all" link goes to that model's own list, filtered by the exact customer number.


def _profile_rows(member: Member, *, contact_visible: bool) -> list[tuple[Any, Any]]:
    phone = member.phone if contact_visible else mask_phone(member.phone)
    email = member.email if contact_visible else mask_email(member.email)

    def field(name: str) -> Any:  # a concrete field: it has a verbose name
        return Member._meta.get_field(name)

    return [
        (field("name").verbose_name, member.name),
        (field("status").verbose_name, member.get_status_display()),
        (field("phone").verbose_name, phone or "-"),
        (field("email").verbose_name, email or "-"),
        (field("gender").verbose_name, member.get_gender_display()),
        (field("birth_date").verbose_name, member.birth_date or "-"),
        (field("city").verbose_name, member.city or "-"),
        (field("branch_code").verbose_name, member.branch_code or "-"),
        (field("risk_level").verbose_name, member.get_risk_level_display() or "-"),
        (field("credit_grade").verbose_name, member.credit_grade or "-"),
        (field("preferred_language").verbose_name, member.get_preferred_language_display()),
        (
            field("marketing_consent").verbose_name,
            _("yes") if member.marketing_consent else _("no"),
        ),
        (field("joined_at").verbose_name, member.joined_at),
    ]


def _list_url(viewname: str, member: Member) -> str | None:
    try:
        return f"{reverse(viewname)}?{urlencode({'member__customer_no': member.customer_no})}"
    except NoReverseMatch:
        return None


def _object_link(viewname: str, pk: Any, text: Any) -> Any:
    try:
        return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)
    except NoReverseMatch:
        return text


def _panel(permission: str, *, section: str, changelist: str | None):
    """Registers ``build(request, member, rows)``, which gives a panel's ``key``, ``title``,
    ``headers`` and ``rows`` from the newest rows of ``section``; the panel also links to
    ``changelist`` filtered by the member (where there is one), and is absent when its app
    registered no rows."""

    def register(build):
        def panel(request, member, sections):
            found = sections.get(section)
            if found is None:
                return None
            return {
                **build(request, member, found.rows),
                "more": found.more,
                "all_url": _list_url(changelist, member) if changelist else None,
            }

        panel.permission = permission  # type: ignore[attr-defined]
        CUSTOMER_PANELS.append(panel)
        return panel

    return register


CUSTOMER_PANELS: list[Any] = []


def _signed(points: int) -> str:
    return f"{points:+,d}"


@_panel("points.view_entry", section="entries", changelist="admin:points_entry_changelist")
def _ledger_panel(request, member, rows):
    return {
        "key": "ledger",
        "title": _("Points ledger"),
        "headers": [
            _("occurred at"),
            _("kind"),
            _("points"),
            _("balance after"),
            _("description"),
            _("expires on"),
        ],
        "rows": [
            [
                entry.occurred_at,
                entry.get_kind_display(),
                _signed(entry.points),
                f"{entry.balance_after:,d}",
                entry.description or entry.reference or "-",
                entry.expires_on or "-",
            ]
            for entry in rows
        ],
    }


@_panel("points.view_lot", section="lots", changelist="admin:points_lot_changelist")
def _lots_panel(request, member, rows):
    return {
        "key": "lots",
        "title": _("Points lots"),
        "headers": [_("earned on"), _("points"), _("remaining"), _("expires on")],
        "rows": [
            [lot.earned_on, f"{lot.points:,d}", f"{lot.remaining:,d}", lot.expires_on or "-"]
            for lot in rows
        ],
    }


@_panel(
    "points.view_adjustment", section="adjustments", changelist="admin:points_adjustment_changelist"
)
def _adjustments_panel(request, member, rows):
    return {
        "key": "adjustments",
        "title": _("Adjustments"),
        "headers": [
            _("requested at"),
            _("points"),
            _("status"),
            _("reason"),
            _("requested by"),
            _("decided by"),
        ],
        "rows": [
            [
                _object_link("admin:points_adjustment_change", row.pk, row.created_at),
                _signed(row.points),
                row.get_status_display(),
                row.reason,
                row.requested_by or "-",
                row.decided_by or "-",
            ]
            for row in rows
        ],
    }


@_panel(
    "members.view_tierhistory",
    section="tier_history",
    changelist="admin:members_tierhistory_changelist",
)
def _tier_history_panel(request, member, rows):
    return {
        "key": "tier-history",
        "title": _("Tier history"),
        "headers": [_("occurred at"), _("from"), _("to"), _("reason"), _("as of"), _("AUM")],
        "rows": [
            [
                row.occurred_at,
                row.from_tier.code if row.from_tier else "-",
                row.to_tier.code,
                row.get_reason_display(),
                row.as_of or "-",
                row.avg_aum if row.avg_aum is not None else "-",
            ]
            for row in rows
        ],
    }


@_panel(
    "members.view_tieroverride",
    section="overrides",
    changelist="admin:members_tieroverride_changelist",
)
def _overrides_panel(request, member, rows):
    return {
        "key": "overrides",
        "title": _("Tier overrides"),
        "headers": [
            _("requested at"),
            _("tier"),
            _("status"),
            _("expires at"),
            _("requested by"),
            _("decided by"),
        ],
        "rows": [
            [
                _object_link("admin:members_tieroverride_change", row.pk, row.requested_at),
                row.tier.code,
                row.get_status_display(),
                row.expires_at,
                row.requested_by or "-",
                row.decided_by or "-",
            ]
            for row in rows
        ],
    }


@_panel(
    "rewards.view_redemption",
    section="redemptions",
    changelist="admin:rewards_redemption_changelist",
)
def _redemptions_panel(request, member, rows):
    return {
        "key": "redemptions",
        "title": _("Redemptions"),
        "headers": [_("created"), _("reward"), _("quantity"), _("points spent"), _("status")],
        "rows": [
            [
                _object_link("admin:rewards_redemption_change", row.pk, row.created_at),
                row.reward,
                row.quantity,
                f"{row.points_spent:,d}",
                row.get_status_display(),
            ]
            for row in rows
        ],
    }


@_panel(
    "events.view_invitation", section="invitations", changelist="admin:events_invitation_changelist"
)
def _invitations_panel(request, member, rows):
    return {
        "key": "invitations",
        "title": _("Invitations"),
        "headers": [_("invited at"), _("event"), _("status"), _("seats"), _("checked in at")],
        "rows": [
            [
                _object_link("admin:events_invitation_change", row.pk, row.invited_at),
                row.event,
                row.get_status_display(),
                row.seats,
                row.checked_in_at or "-",
            ]
            for row in rows
        ],
    }


@_panel(
    "members.view_assetsnapshot",
    section="snapshots",
    changelist="admin:members_assetsnapshot_changelist",
)
def _snapshots_panel(request, member, rows):
    return {
        "key": "snapshots",
        "title": _("Asset snapshots"),
        "headers": [
            _("as of"),
            _("deposits"),
            _("wealth products"),
            _("funds"),
            _("insurance"),
            _("loans"),
            _("AUM"),
            _("contribution"),
        ],
        "rows": [
            [
                row.as_of,
                row.deposits,
                row.wealth,
                row.funds,
                row.insurance,
                row.loans,
                row.aum,
                row.contribution,
            ]
            for row in rows
        ],
    }


# The inbox has no list of its own in the console.
@_panel("members.view_member", section="messages", changelist=None)
def _messages_panel(request, member, rows):
    return {
        "key": "messages",
        "title": _("Messages"),
        "headers": [_("created"), _("kind"), _("title"), _("delivery"), _("read")],
        "rows": [
            [
                row.created_at,
                row.get_kind_display(),
                row.title,
                row.get_delivery_display(),
                row.read_at or "-",
            ]
            for row in rows
        ],
    }


class MemberRecordMixin:
    """For a record of one member (a snapshot, an override, a tier change): its page is titled
    by the member's customer number and the record's date, never by database ids."""

    label_field = ""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if record is not None:
            moment = getattr(record, self.label_field, "") if self.label_field else ""
            if isinstance(moment, dt.datetime):
                moment = formats.localize(timezone.localtime(moment))
            extra_context = {
                **(extra_context or {}),
                "subtitle": f"{record.member.customer_no} {moment}".strip(),
            }
        return super().change_view(  # type: ignore[misc]
            request, object_id, form_url, extra_context
        )


@admin.register(AssetSnapshot)
class AssetSnapshotAdmin(MemberRecordMixin, AllOrNothingImportMixin, ReadOnlyAdmin):
    """Core banking's figures: listed, exported and imported from a file (through
    ``asset_snapshots_store``), never added, changed or deleted by hand."""

    resource_classes = [AssetSnapshotResource]
    label_field = "as_of"
    list_display = ["customer_no", "as_of", "aum", "contribution", "loans"]
    list_filter = ["as_of"]
    search_fields = ["member__customer_no", "member__name"]
    list_select_related = ["member"]
    date_hierarchy = "as_of"

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, snapshot) -> str:
        return snapshot.member.customer_no


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
    # Fits 1,280 px: the names and the qualification each in one column, the rest on the form.
    list_display = ["code", "names", "rank", "qualification", "multiplier", "downgrades", "active"]
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

    @admin.display(description=_("name"), ordering="name_en")
    def names(self, tier) -> str:
        return " / ".join(name for name in (tier.name_en, tier.name_zh_hans) if name)

    @admin.display(description=_("qualification"))
    def qualification(self, tier) -> str:
        parts = []
        if tier.min_avg_aum is not None:
            parts.append(_("AUM ≥ %(amount)s") % {"amount": f"{tier.min_avg_aum:,.0f}"})
        if tier.min_contribution is not None:
            parts.append(
                _("contribution ≥ %(amount)s") % {"amount": f"{tier.min_contribution:,.0f}"}
            )
        if not parts:
            return str(_("open to all"))
        joiner = f" {_('or') if tier.rule == Tier.Rule.ANY else _('and')} "
        months = _("%(months)s mo.") % {"months": tier.window_months}
        return f"{joiner.join(str(part) for part in parts)} · {months}"

    @admin.display(description=_("downgrades"))
    def downgrades(self, tier) -> str:
        grace = _("after %(count)s") % {"count": tier.grace_periods}
        return f"{tier.get_downgrade_mode_display()} · {grace}"

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
class TierOverrideAdmin(MemberRecordMixin, ConsoleAdmin):
    label_field = "requested_at"
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
    autocomplete_fields = ["member"]
    list_select_related = ["member", "tier", "requested_by", "decided_by"]
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
class TierHistoryAdmin(MemberRecordMixin, ReadOnlyAdmin):
    label_field = "occurred_at"
    list_display = ["occurred_at", "member", "from_tier", "to_tier", "reason", "as_of", "avg_aum"]
    list_filter = ["reason", "to_tier"]
    search_fields = ["member__customer_no", "member__name"]
    date_hierarchy = "occurred_at"
    list_select_related = ["member", "from_tier", "to_tier"]


@admin.register(MemberTier)
class MemberTierAdmin(MemberRecordMixin, ReadOnlyAdmin):
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
