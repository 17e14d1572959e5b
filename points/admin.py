"""Points in the admin: rules and campaigns are configuration, saved (and audited) through the
services; the ledger is read-only; the inbox can be filtered, retried (after a confirmation page)
and filled by importing a file through the API's own ingest (``points.resources``); adjustments
are requested and decided through the services (``points.services.adjustments``).

Members are named by their customer number everywhere, never by a database id. A decision on
an adjustment is taken on a confirmation page that asks for its reason, from the list (several
at once) or from the adjustment's own page; each checks the approver's permission (and, on the
adjustment's page, that the decider is not its requester) and changes nothing but on a POST.
Texts the services store as codes (an inbox row's reason) are shown through translated labels.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action
from unfold.enums import ActionVariant
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminSelect2MultipleWidget,
    UnfoldAdminTextareaWidget,
)

from loyalty.admin import (
    CONFIRM_LIST_LIMIT,
    ConsoleAdmin,
    ConsoleImportMixin,
    ReadOnlyAdmin,
    confirmation_page,
    confirmed,
)
from loyalty.errors import LoyaltyError
from members.forms import TierCodesField
from points.descriptions import entry_description
from points.models import (
    Account,
    Adjustment,
    Campaign,
    Channel,
    EarningRule,
    Entry,
    Lot,
    Transaction,
)
from points.resources import TransactionResource
from points.selectors import points_account_balance
from points.services.adjustments import (
    ADJUSTMENT_LIMIT,
    adjustment_applicable_check,
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
)
from points.services.ingest import consumer_enqueue, transactions_retry
from points.services.rules import campaign_save, earning_rule_save

# The reasons the consumer stores on an inbox row as codes, as staff read them.
STATUS_REASONS: dict[str, Any] = {
    "capped": _("Capped by the rule's limits"),
    "below_unit": _("Below the rule's amount unit: no points"),
    "no_rule": _("No earning rule matches"),
    "already credited": _("Already credited"),
    "already reversed": _("Already reversed"),
    "nothing to reverse": _("Nothing left to reverse"),
    "waiting for the original": _("Waiting for the original transaction"),
    "not a transaction of this member to reverse": _(
        "The original is not a transaction of this member"
    ),
    "member_frozen": _("Member frozen"),
    "member_closed": _("Member closed"),
    "member_active": _("Member active"),
}


def status_reason_label(reason: str) -> str:
    """An inbox row's reason in the reader's language (an error's own text as it was stored)."""
    label = STATUS_REASONS.get(reason)
    return str(label) if label is not None else reason


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = [
        "customer_no",
        "member_name",
        "balance",
        "lifetime_earned",
        "lifetime_redeemed",
        "updated_at",
    ]
    search_fields = ["member__customer_no", "member__name"]
    list_select_related = ["member"]

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, account: Account) -> str:
        return account.member.customer_no

    @admin.display(description=_("name"), ordering="member__name")
    def member_name(self, account: Account) -> str:
        return account.member.name


class _CampaignsByCode(Mapping[str, Campaign]):
    """Campaigns looked up by code as an entry's description names them (one query each, for
    the few earn entries of a page that record a campaign)."""

    def __getitem__(self, code: str) -> Campaign:
        campaign = Campaign.objects.filter(code=code).first()
        if campaign is None:
            raise KeyError(code)
        return campaign

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "customer_no",
        "kind",
        "points",
        "balance_after",
        "entry_text",
        "expires_on",
    ]
    list_filter = ["kind", "occurred_at"]
    search_fields = ["member__customer_no", "idempotency_key", "reference", "public_id"]
    list_select_related = ["member", "earning_rule"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, entry: Entry) -> str:
        return entry.member.customer_no

    @admin.display(description=_("description"))
    def entry_text(self, entry: Entry) -> str:
        """What the entry is, in the reader's language (as the API says it)."""
        return Truncator(entry_description(entry, campaigns=_CampaignsByCode())).chars(80)


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["customer_no", "points", "remaining", "earned_on", "expires_on"]
    list_filter = ["expires_on"]
    search_fields = ["member__customer_no"]
    list_select_related = ["member"]

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, lot: Lot) -> str:
        return lot.member.customer_no


@admin.register(Transaction)
class TransactionAdmin(ConsoleImportMixin, ReadOnlyAdmin):
    """The inbox. An import (``points.add_transaction``, like the ingest API) goes through the
    API's validation and ingest (:mod:`points.resources`)."""

    list_display = [
        "external_id",
        "source",
        "customer_no",
        "type",
        "amount",
        "channel",
        "occurred_at",
        "status",
        "reason",
        "points",
    ]
    list_filter = ["status", "type", "channel", "source", "via"]
    search_fields = ["external_id", "reverses", "member__customer_no"]
    list_select_related = ["member"]
    date_hierarchy = "received_at"
    actions = ["retry"]
    show_full_result_count = False
    resource_classes = [TransactionResource]
    skip_admin_log = True  # the inbox rows are the record of what was imported

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, row: Transaction) -> str:
        return row.member.customer_no

    @admin.display(description=_("reason"), ordering="status_reason")
    def reason(self, row: Transaction) -> str:
        return Truncator(status_reason_label(row.status_reason)).chars(40)

    def has_retry_permission(self, request):
        return request.user.has_perm("points.change_transaction")

    # Rows put back to pending per database transaction (and per query's id list).
    retry_chunk_size = 1000

    @admin.action(description=_("Retry selected transactions"), permissions=["retry"])
    def retry(self, request, queryset):
        """After a confirmation page: failed, skipped and parked rows go back to pending
        (audited, by the service), in chunks, so "select all" over many thousands of rows
        works; selected rows that are still pending, however young, wake the consumer too."""
        if not confirmed(request):
            retried = queryset.exclude(
                status__in=[Transaction.Status.PROCESSED, Transaction.Status.PENDING]
            ).count()
            pending = queryset.filter(status=Transaction.Status.PENDING).count()
            total = queryset.count()
            rows = [
                f"{row.source}:{row.external_id} · {row.member.customer_no} · "
                f"{row.get_status_display()}"
                + (f" · {status_reason_label(row.status_reason)}" if row.status_reason else "")
                for row in queryset.select_related("member").order_by("pk")[:CONFIRM_LIST_LIMIT]
            ]
            return confirmation_page(
                request,
                self,
                title=_("Retry transactions"),
                intro=_(
                    "%(retried)s failed, skipped or waiting rows go back to pending and are "
                    "processed again; %(pending)s still pending wake the consumer; "
                    "%(processed)s processed rows are left as they are."
                )
                % {
                    "retried": retried,
                    "pending": pending,
                    "processed": total - retried - pending,
                },
                rows=rows,
                count=total,
                submit=_("Retry these transactions"),
                action_name="retry",
                back=reverse("admin:points_transaction_changelist"),
            )
        count = 0
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        size = self.retry_chunk_size
        for start in range(0, len(ids), size):
            count += transactions_retry(ids=ids[start : start + size], actor=request.user)
        pending = queryset.filter(status=Transaction.Status.PENDING).count()
        if pending and not count:  # transactions_retry enqueues the consumer only for its rows
            transaction.on_commit(consumer_enqueue)
        self.message_user(
            request, _("%(count)s transactions queued again.") % {"count": count}, messages.SUCCESS
        )
        if pending:
            self.message_user(
                request,
                _("%(count)s selected transactions were still pending; the consumer was woken.")
                % {"count": pending},
                messages.INFO,
            )
        return None


# The channels of points.models.Channel; the merchant categories (ISO 18245) the programme's
# rules name. A rule that names another category keeps it (it is offered too).
MERCHANT_CATEGORIES: list[tuple[str, Any]] = [
    ("1520", _("General contractors")),
    ("1711", _("Heating, plumbing and air-conditioning contractors")),
    ("4111", _("Commuter transport")),
    ("4121", _("Taxis and ride-hailing")),
    ("4511", _("Airlines")),
    ("4722", _("Travel agencies and tour operators")),
    ("4829", _("Money transfers")),
    ("4900", _("Utilities")),
    ("5300", _("Wholesale clubs")),
    ("5311", _("Department stores")),
    ("5399", _("General merchandise")),
    ("5411", _("Grocery stores and supermarkets")),
    ("5499", _("Food stores")),
    ("5541", _("Service stations")),
    ("5542", _("Automated fuel dispensers")),
    ("5651", _("Family clothing stores")),
    ("5691", _("Clothing stores")),
    ("5732", _("Electronics stores")),
    ("5811", _("Caterers")),
    ("5812", _("Restaurants")),
    ("5813", _("Bars")),
    ("5814", _("Fast food restaurants")),
    ("5912", _("Pharmacies")),
    ("5977", _("Cosmetics stores")),
    ("6011", _("Cash withdrawals")),
    ("6051", _("Quasi-cash: foreign currency, money orders")),
    ("6513", _("Real estate agents and rentals")),
    ("7011", _("Hotels and lodging")),
    ("7832", _("Cinemas")),
    ("7997", _("Clubs and memberships")),
    ("8011", _("Doctors")),
    ("8062", _("Hospitals")),
    ("8220", _("Colleges and universities")),
    ("9222", _("Fines")),
    ("9311", _("Tax payments")),
    ("9399", _("Government services")),
]


def _mcc_choices(*stored: list[str] | None) -> list[tuple[str, str]]:
    known = dict(MERCHANT_CATEGORIES)
    extra = sorted({code for codes in stored for code in codes or [] if code not in known})
    return [(code, f"{code} {label}") for code, label in MERCHANT_CATEGORIES] + [
        (code, code) for code in extra
    ]


def _rule_label(name: str) -> Any:
    """The model field's own (translated) name, capitalised as the form's other labels are."""
    field = EarningRule._meta.get_field(name)
    return capfirst(getattr(field, "verbose_name", name))


class EarningRuleForm(forms.ModelForm):
    """Channels and merchant categories picked from lists, not typed as JSON; the values are
    still validated by the model (``earning_rule_save`` runs ``full_clean``)."""

    channels = forms.MultipleChoiceField(
        label=_rule_label("channels"),
        choices=Channel.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None ticked: every channel."),
    )
    mcc_include = forms.MultipleChoiceField(
        label=_rule_label("mcc_include"),
        required=False,
        widget=UnfoldAdminSelect2MultipleWidget,
        help_text=_("Empty: every category not excluded."),
    )
    mcc_exclude = forms.MultipleChoiceField(
        label=_rule_label("mcc_exclude"),
        required=False,
        widget=UnfoldAdminSelect2MultipleWidget,
    )

    class Meta:
        model = EarningRule
        fields = [
            "code",
            "name_en",
            "name_zh_hans",
            "active",
            "priority",
            "transaction_type",
            "channels",
            "mcc_include",
            "mcc_exclude",
            "currency",
            "min_amount",
            "amount_unit",
            "points_per_unit",
            "apply_tier_multiplier",
            "cap_per_transaction",
            "cap_per_day",
            "cap_per_month",
            "valid_from",
            "valid_to",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = _mcc_choices(self.instance.mcc_include, self.instance.mcc_exclude)
        for name in ("mcc_include", "mcc_exclude"):
            self.fields[name].choices = choices  # type: ignore[attr-defined]


@admin.register(EarningRule)
class EarningRuleAdmin(ConsoleAdmin):
    form = EarningRuleForm
    list_display = [
        "code",
        "title",
        "active",
        "priority",
        "transaction_type",
        "amount_unit",
        "points_per_unit",
        "cap_per_transaction",
        "cap_per_day",
        "cap_per_month",
    ]
    list_filter = ["active", "transaction_type"]
    search_fields = ["code", "name_en", "name_zh_hans"]

    @admin.display(description=_("name"), ordering="name_en")
    def title(self, rule: EarningRule) -> str:
        return rule.name  # in the reader's language

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: ledger entries name the rule that credited them.
        return False

    def save_model(self, request, obj, form, change):
        earning_rule_save(rule=obj, actor=request.user)


class CampaignForm(forms.ModelForm):
    target_tiers = TierCodesField()

    class Meta:
        model = Campaign
        exclude: list[str] = []  # every field: the admin's own options choose what shows
        widgets = {"rules": UnfoldAdminCheckboxSelectMultipleWidget}


@admin.register(Campaign)
class CampaignAdmin(ConsoleAdmin):
    form = CampaignForm
    list_display = [
        "code",
        "name_en",
        "name_zh_hans",
        "active",
        "multiplier",
        "starts_on",
        "ends_on",
    ]
    list_filter = ["active"]
    search_fields = ["code", "name_en", "name_zh_hans"]

    def save_model(self, request, obj, form, change):
        campaign_save(campaign=obj, rules=form.cleaned_data.get("rules"), actor=request.user)

    def save_related(self, request, form, formsets, change):
        # campaign_save has set the rules (the form's only many-to-many field).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class AdjustmentForm(forms.ModelForm):
    """A request: the member picked by customer number (autocomplete), whole points (never 0),
    a reason. What approval would refuse (a closed member, a debit beyond the balance) is
    refused here already, by the service's own check, as an error on the form."""

    class Meta:
        model = Adjustment
        fields = ["member", "points", "reason"]
        widgets = {"reason": UnfoldAdminTextareaWidget(attrs={"rows": 3})}

    def clean_points(self) -> int:
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("An adjustment moves at least one point."))
        if abs(points) > ADJUSTMENT_LIMIT:
            raise forms.ValidationError(
                _("At most %(limit)s points either way.") % {"limit": f"{ADJUSTMENT_LIMIT:,}"}
            )
        return points

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        member, points = cleaned.get("member"), cleaned.get("points")
        if member is not None and points:
            try:
                adjustment_applicable_check(
                    member=member, points=points, balance=points_account_balance(member=member)
                )
            except LoyaltyError as error:
                self.add_error("points" if points < 0 else "member", str(error.detail))
        return cleaned


class DecisionForm(forms.Form):
    note = forms.CharField(
        label=_("Reason for the decision"),
        max_length=500,
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=_("Recorded with the adjustment and in the audit log."),
    )


@admin.register(Adjustment)
class AdjustmentAdmin(ConsoleAdmin):
    form = AdjustmentForm
    list_display = [
        "created_at",
        "customer_no",
        "points",
        "short_reason",
        "current_balance",
        "status",
        "requested_by",
        "decided_by",
    ]
    list_filter = ["status"]
    search_fields = ["member__customer_no", "reason"]
    autocomplete_fields = ["member"]
    actions = ["approve", "reject"]
    actions_detail = ["approve_detail", "reject_detail"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Adjustment]:
        balance = Account.objects.filter(member=OuterRef("member_id")).values("balance")[:1]
        return (
            super()
            .get_queryset(request)
            .select_related("member", "requested_by", "decided_by")
            .annotate(member_balance=Subquery(balance))
        )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["member", "points", "reason"]
        return [
            "customer_no",
            "member_name",
            "points",
            "reason",
            "current_balance",
            "status",
            "requested_by",
            "created_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, adjustment: Adjustment) -> str:
        return adjustment.member.customer_no

    @admin.display(description=_("member"))
    def member_name(self, adjustment: Adjustment) -> str:
        return adjustment.member.name

    @admin.display(description=_("reason"))
    def short_reason(self, adjustment: Adjustment) -> str:
        return Truncator(adjustment.reason).chars(40)

    @admin.display(description=_("current balance"), ordering="member_balance")
    def current_balance(self, adjustment: Adjustment) -> int:
        balance = getattr(adjustment, "member_balance", None)
        if balance is None and not hasattr(adjustment, "member_balance"):
            return points_account_balance(member=adjustment.member)
        return balance or 0

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("points.approve_adjustment")

    def has_decide_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        """May decide this adjustment: an approver, on a pending one they did not request."""
        if not self.has_approve_permission(request):
            return False
        if object_id is None:
            return True
        adjustment = self.get_object(request, str(object_id))
        return (
            adjustment is not None
            and adjustment.status == Adjustment.Status.PENDING
            and adjustment.requested_by_id != request.user.pk
        )

    def save_model(self, request, obj, form, change):
        # Requests go through the service (audited); an existing one is never edited.
        if not change:
            created = adjustment_request(
                member=obj.member, points=obj.points, reason=obj.reason, actor=request.user
            )
            obj.pk = created.pk

    def _label(self, adjustment: Adjustment) -> str:
        return (
            f"{adjustment.member.customer_no} {adjustment.member.name} · {adjustment.points:+,d} · "
            f"{adjustment.reason} · "
            + str(_("balance %(balance)s") % {"balance": f"{self.current_balance(adjustment):,}"})
            + f" · {adjustment.get_status_display()}"
        )

    def _decide(self, request, queryset, service, done) -> None:
        form = DecisionForm(request.POST)
        note = form.cleaned_data["note"] if form.is_valid() else ""
        count = 0
        for adjustment in queryset.order_by("created_at"):
            try:
                service(adjustment=adjustment, actor=request.user, note=note)
                count += 1
            except LoyaltyError as exc:
                self.message_user(request, f"{adjustment}: {exc.detail}", messages.ERROR)
        self.message_user(request, done % {"count": count}, messages.SUCCESS)

    def _decision_page(self, request, queryset, *, verb: str, title, intro, submit):
        rows = [self._label(adjustment) for adjustment in queryset[:CONFIRM_LIST_LIMIT]]
        return confirmation_page(
            request,
            self,
            title=title,
            intro=intro,
            rows=rows,
            count=queryset.count(),
            submit=submit,
            action_name=verb,
            form=DecisionForm(request.POST if confirmed(request) else None),
            back=reverse("admin:points_adjustment_changelist"),
            danger=verb == "reject",
        )

    @admin.action(description=_("Approve selected adjustments"), permissions=["approve"])
    def approve(self, request, queryset):
        if not confirmed(request):
            return self._decision_page(
                request,
                queryset.order_by("created_at"),
                verb="approve",
                title=_("Approve adjustments"),
                intro=_(
                    "Each pending adjustment below is applied to its member's points (unless "
                    "you requested it, or the balance no longer allows it)."
                ),
                submit=_("Approve these adjustments"),
            )
        self._decide(request, queryset, adjustment_approve, _("%(count)s adjustments approved."))
        return None

    @admin.action(description=_("Reject selected adjustments"), permissions=["approve"])
    def reject(self, request, queryset):
        if not confirmed(request):
            return self._decision_page(
                request,
                queryset.order_by("created_at"),
                verb="reject",
                title=_("Reject adjustments"),
                intro=_("Each pending adjustment below is closed; no points move."),
                submit=_("Reject these adjustments"),
            )
        self._decide(request, queryset, adjustment_reject, _("%(count)s adjustments rejected."))
        return None

    # One adjustment, from its own page: a confirmation page with the reason, then a POST.

    def _decide_one(self, request: HttpRequest, object_id: str, *, approve: bool) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if not self.has_decide_permission(request, object_id):
            raise PermissionDenied
        adjustment = get_object_or_404(self.get_queryset(request), pk=object_id)
        change_url = reverse("admin:points_adjustment_change", args=[adjustment.pk])
        form = DecisionForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            service = adjustment_approve if approve else adjustment_reject
            try:
                service(adjustment=adjustment, actor=request.user, note=form.cleaned_data["note"])
            except LoyaltyError as exc:
                self.message_user(request, f"{adjustment}: {exc.detail}", messages.ERROR)
            else:
                done = _("Adjustment approved.") if approve else _("Adjustment rejected.")
                self.message_user(request, done, messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": adjustment,
            "title": _("Approve the adjustment") if approve else _("Reject the adjustment"),
            "intro": (
                _("The points are applied to the member's account now.")
                if approve
                else _("The adjustment is closed; no points move.")
            ),
            "summary": self._label(adjustment),
            "form": form,
            "submit_label": _("Approve") if approve else _("Reject"),
            "danger": not approve,
            "back": change_url,
        }
        return TemplateResponse(request, "admin/points/adjustment/decide.html", context)

    @action(
        description=_("Approve"),
        url_path="approve",
        permissions=["decide"],
        icon="check",
        variant=ActionVariant.PRIMARY,
    )
    def approve_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_one(request, object_id, approve=True)

    @action(
        description=_("Reject"),
        url_path="reject",
        permissions=["decide"],
        icon="close",
        variant=ActionVariant.DANGER,
    )
    def reject_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_one(request, object_id, approve=False)
