"""Points in the admin: rules and campaigns are configuration, saved (and audited) through the
services; the ledger is read-only; the inbox can be filtered and retried; adjustments are
requested and decided through the services."""

from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from loyalty.admin import ConsoleAdmin, ReadOnlyAdmin
from loyalty.errors import LoyaltyError
from points.models import Account, Adjustment, Campaign, EarningRule, Entry, Lot, Transaction
from points.services.adjustments import adjustment_approve, adjustment_reject, adjustment_request
from points.services.ingest import consumer_enqueue, transactions_retry
from points.services.rules import campaign_save, earning_rule_save


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["member", "balance", "lifetime_earned", "lifetime_redeemed", "updated_at"]
    search_fields = ["member__customer_no", "member__name"]
    list_select_related = ["member"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "member",
        "kind",
        "points",
        "balance_after",
        "description",
        "expires_on",
    ]
    list_filter = ["kind", "occurred_at"]
    search_fields = ["member__customer_no", "idempotency_key", "reference", "public_id"]
    list_select_related = ["member"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["member", "points", "remaining", "earned_on", "expires_on"]
    list_filter = ["expires_on"]
    search_fields = ["member__customer_no"]
    list_select_related = ["member"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "external_id",
        "source",
        "member",
        "type",
        "amount",
        "channel",
        "occurred_at",
        "status",
        "status_reason",
        "points",
    ]
    list_filter = ["status", "type", "channel", "source", "via"]
    search_fields = ["external_id", "reverses", "member__customer_no"]
    list_select_related = ["member"]
    date_hierarchy = "received_at"
    actions = ["retry"]
    show_full_result_count = False

    def has_retry_permission(self, request):
        return request.user.has_perm("points.change_transaction")

    # Rows put back to pending per database transaction (and per query's id list).
    retry_chunk_size = 1000

    @admin.action(description=_("Retry selected transactions"), permissions=["retry"])
    def retry(self, request, queryset):
        """Failed, skipped and parked rows go back to pending (audited, by the service), in
        chunks, so "select all" over many thousands of rows works; selected rows that are
        still pending, however young, wake the consumer too."""
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


@admin.register(EarningRule)
class EarningRuleAdmin(ConsoleAdmin):
    list_display = [
        "code",
        "name_en",
        "name_zh_hans",
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

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: ledger entries name the rule that credited them.
        return False

    def save_model(self, request, obj, form, change):
        earning_rule_save(rule=obj, actor=request.user)


@admin.register(Campaign)
class CampaignAdmin(ConsoleAdmin):
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
    filter_horizontal = ["rules"]

    def save_model(self, request, obj, form, change):
        campaign_save(campaign=obj, rules=form.cleaned_data.get("rules"), actor=request.user)

    def save_related(self, request, form, formsets, change):
        # campaign_save has set the rules (the form's only many-to-many field).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(Adjustment)
class AdjustmentAdmin(ConsoleAdmin):
    list_display = ["created_at", "member", "points", "status", "requested_by", "decided_by"]
    list_filter = ["status"]
    search_fields = ["member__customer_no", "reason"]
    raw_id_fields = ["member"]
    fields = ["member", "points", "reason"]
    actions = ["approve", "reject"]

    def get_readonly_fields(self, request, obj=None):
        return ["member", "points", "reason"] if obj else []

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("points.approve_adjustment")

    def save_model(self, request, obj, form, change):
        # Requests go through the service (audited); an existing one is never edited.
        if not change:
            created = adjustment_request(
                member=obj.member, points=obj.points, reason=obj.reason, actor=request.user
            )
            obj.pk = created.pk

    def _decide(self, request, queryset, service, done):
        count = 0
        for adjustment in queryset.order_by("created_at"):
            try:
                service(adjustment=adjustment, actor=request.user)
                count += 1
            except LoyaltyError as exc:
                self.message_user(request, f"{adjustment}: {exc}", messages.ERROR)
        self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Approve selected adjustments"), permissions=["approve"])
    def approve(self, request, queryset):
        self._decide(request, queryset, adjustment_approve, _("%(count)s adjustments approved."))

    @admin.action(description=_("Reject selected adjustments"), permissions=["approve"])
    def reject(self, request, queryset):
        self._decide(request, queryset, adjustment_reject, _("%(count)s adjustments rejected."))
