"""The points ledger: accounts, append-only entries, credit lots, the transaction inbox, earning
rules and campaigns, and maker-checker adjustments.

Every ledger row carries the member id, so the tables can later be distributed by member.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.money import DEFAULT_CURRENCY, MoneyField
from loyalty.translation import translated
from members.models import Member, Segment, tier_codes_check

mcc_validator = RegexValidator(
    r"^[0-9]{4}$", _("A merchant category code is 4 digits."), code="invalid_mcc"
)


class TransactionType(models.TextChoices):
    CARD_SPEND = "card_spend", _("Card spend")
    DEPOSIT = "deposit", _("Deposit")
    WEALTH_PURCHASE = "wealth_purchase", _("Wealth product purchase")
    FUND_PURCHASE = "fund_purchase", _("Fund purchase")
    INSURANCE_PURCHASE = "insurance_purchase", _("Insurance purchase")
    LOAN_REPAYMENT = "loan_repayment", _("Loan repayment")
    BILL_PAYMENT = "bill_payment", _("Bill payment")
    TRANSFER = "transfer", _("Transfer")


class Channel(models.TextChoices):
    MOBILE = "mobile", _("Mobile banking")
    WEB = "web", _("Web banking")
    BRANCH = "branch", _("Branch")
    ATM = "atm", _("ATM")
    POS = "pos", _("Point of sale")


class Account(models.Model):
    """A member's points account: the cached balance of the ledger and lifetime totals.

    ``balance`` always equals the sum of the member's entries (``reconcile_points`` proves it). It
    is below zero only after a ``reverse`` clawed back points already spent (debt).
    """

    member = models.OneToOneField(
        Member, on_delete=models.PROTECT, related_name="points_account", verbose_name=_("member")
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    lifetime_earned = models.BigIntegerField(_("lifetime earned"), default=0)
    lifetime_redeemed = models.BigIntegerField(_("lifetime redeemed"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(lifetime_earned__gte=0) & Q(lifetime_redeemed__gte=0),
                name="points_account_lifetime_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member.customer_no}: {self.balance}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    BONUS = "bonus", _("Bonus")
    REDEEM = "redeem", _("Redeemed")
    REFUND = "refund", _("Refunded")
    REVERSE = "reverse", _("Reversed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")
    FORFEIT = "forfeit", _("Forfeited")


# Each kind's sign, once: the entry's check constraint and the ledger's credit and debit follow
# these. An adjustment goes either way (never zero).
CREDIT_KINDS = (EntryKind.EARN, EntryKind.BONUS, EntryKind.REFUND)
DEBIT_KINDS = (EntryKind.REDEEM, EntryKind.REVERSE, EntryKind.EXPIRE, EntryKind.FORFEIT)
EITHER_WAY_KINDS = (EntryKind.ADJUST,)


class Entry(models.Model):
    """One line of the ledger. Append-only: the database refuses UPDATE and DELETE."""

    Kind = EntryKind

    id = models.BigAutoField(primary_key=True)
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    # Indexed by ``points_entry_member_time_idx`` (member, -occurred_at, -id); no FK index.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="points_entries",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    description = models.CharField(_("description"), max_length=200, blank=True)
    reference = models.CharField(
        _("reference"), max_length=200, blank=True, help_text=_("What caused this entry.")
    )
    # Inbox rows and rules are never deleted (the database refuses it), so these references
    # need no index of their own: every index on the ledger is paid on each of its inserts.
    # The ledger's references are checked once per statement, not per row: see loyalty.db.
    transaction = models.ForeignKey(
        "Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("transaction"),
        db_index=False,
        db_constraint=False,
    )
    earning_rule = models.ForeignKey(
        "EarningRule",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("earning rule"),
        db_index=False,
        db_constraint=False,
    )
    earned_on = models.DateField(_("business date"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    rules = models.JSONField(
        _("rules applied"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [
            # A member's ledger newest first by when the business happened (the API's order).
            models.Index(
                fields=["member", "-occurred_at", "-id"], name="points_entry_member_time_idx"
            ),
            models.Index(
                fields=["member", "earning_rule", "earned_on"],
                name="points_entry_rule_usage_idx",
                condition=Q(earning_rule__isnull=False),
            ),
        ]
        constraints = [
            # A constraint rather than unique=True: no LIKE index next to the unique one.
            models.UniqueConstraint(
                fields=["idempotency_key"], name="points_entry_idempotency_key_uniq"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=list(CREDIT_KINDS), points__gt=0)
                    | Q(kind__in=list(DEBIT_KINDS), points__lt=0)
                    | (Q(kind=EntryKind.ADJUST) & ~Q(points=0))
                ),
                name="points_entry_sign_by_kind",
            ),
            # Only a reverse may take the balance below zero; a debit of any other kind fails.
            models.CheckConstraint(
                condition=Q(balance_after__gte=0) | Q(kind="reverse") | Q(points__gt=0),
                name="points_entry_no_overdraft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member.customer_no} {self.get_kind_display()} {self.points:+d}"


class Lot(models.Model):
    """Points from one credit, with the date they expire; debits consume lots in expiry order."""

    # Open lots are found through ``points_lot_open_idx``; no separate FK index.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="points_lots",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    entry = models.OneToOneField(
        Entry,
        on_delete=models.PROTECT,
        related_name="lot",
        verbose_name=_("credit entry"),
        db_constraint=False,
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    earned_on = models.DateField(_("earned on"))
    expires_on = models.DateField(_("expires on"), null=True, blank=True)

    class Meta:
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        indexes = [
            models.Index(
                fields=["member", "expires_on", "id"],
                name="points_lot_open_idx",
                condition=Q(remaining__gt=0),
            ),
            models.Index(
                fields=["expires_on"], name="points_lot_due_idx", condition=Q(remaining__gt=0)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gt=0)
                & Q(remaining__gte=0)
                & Q(remaining__lte=models.F("points")),
                name="points_lot_remaining_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member.customer_no} {self.remaining}/{self.points} {self.expires_on or ''}"


class Consumption(models.Model):
    """How many points one debit took from one lot: the rows of a debit sum to what it drew
    from lots, so a refund can put exactly those points back into exactly those lots.
    Append-only, like the entries."""

    id = models.BigAutoField(primary_key=True)
    # Read by debit entry (a refund) and by lot (the admin); no member index needed.
    entry = models.ForeignKey(
        Entry,
        on_delete=models.PROTECT,
        related_name="consumptions",
        verbose_name=_("debit entry"),
        db_constraint=False,
    )
    lot = models.ForeignKey(
        Lot,
        on_delete=models.PROTECT,
        related_name="consumptions",
        verbose_name=_("lot"),
        db_constraint=False,
    )
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("lot consumption")
        verbose_name_plural = _("lot consumptions")
        constraints = [
            models.UniqueConstraint(fields=["entry", "lot"], name="points_consumption_once"),
            models.CheckConstraint(condition=Q(points__gt=0), name="points_consumption_positive"),
        ]

    def __str__(self) -> str:
        return f"entry {self.entry_id} took {self.points} from lot {self.lot_id}"


class Transaction(models.Model):
    """The inbox: a banking transaction as received, stored once per ``(source, external_id)``
    before any point is credited; the consumer sets its outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        SKIPPED = "skipped", _("Skipped")
        PARKED = "parked", _("Waiting for the original")
        FAILED = "failed", _("Failed")

    class Via(models.TextChoices):
        API = "api", _("Ingest API")
        FILE = "file", _("Batch file")
        TASK = "task", _("Celery message")
        DEMO = "demo", _("Demo data")

    # What a delivery carries besides the customer number, in one place: the validation's
    # output, the inbox insert, the consumer's rows and the CSV import's columns follow it.
    DELIVERED_FIELDS = (
        "external_id",
        "source",
        "type",
        "amount",
        "currency",
        "occurred_at",
        "channel",
        "merchant_category",
        "reverses",
    )

    id = models.BigAutoField(primary_key=True)
    source = models.CharField(_("source"), max_length=32, default="core")
    external_id = models.CharField(_("external id"), max_length=64)
    # Indexed by ``points_tx_member_idx`` (member, -occurred_at); no separate FK index.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="points_transactions",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    type = models.CharField(_("type"), max_length=24, choices=TransactionType.choices)
    amount = MoneyField(verbose_name=_("amount"))
    currency = models.CharField(_("currency"), max_length=3, default=DEFAULT_CURRENCY)
    occurred_at = models.DateTimeField(_("occurred at"))
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    merchant_category = models.CharField(_("merchant category"), max_length=4, blank=True)
    reverses = models.CharField(_("reverses"), max_length=64, blank=True)
    via = models.CharField(_("received via"), max_length=8, choices=Via.choices)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)
    points = models.BigIntegerField(_("points"), default=0)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transaction inbox")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="points_transaction_source_external_uniq"
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="points_transaction_amount_gt_0"
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"], name="points_tx_pending_idx", condition=Q(status="pending")
            ),
            models.Index(
                fields=["source", "reverses"],
                name="points_tx_reverses_idx",
                condition=~Q(reverses=""),
            ),
            models.Index(fields=["member", "-occurred_at"], name="points_tx_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class EarningRule(models.Model):
    """How a kind of transaction earns points. The first active rule that matches (lowest
    ``priority``, then oldest) applies; a transaction no rule matches earns nothing."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100, blank=True)
    active = models.BooleanField(_("active"), default=True)
    priority = models.PositiveIntegerField(_("priority"), default=100)
    transaction_type = models.CharField(
        _("transaction type"), max_length=24, choices=TransactionType.choices
    )
    channels = models.JSONField(
        _("channels"), default=list, blank=True, help_text=_("Empty means every channel.")
    )
    mcc_include = models.JSONField(
        _("merchant categories included"),
        default=list,
        blank=True,
        help_text=_("4-digit MCCs; empty means every category not excluded."),
    )
    mcc_exclude = models.JSONField(
        _("merchant categories excluded"), default=list, blank=True, help_text=_("4-digit MCCs.")
    )
    currency = models.CharField(_("currency"), max_length=3, default=DEFAULT_CURRENCY)
    min_amount = MoneyField(
        verbose_name=_("minimum amount"), default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    amount_unit = MoneyField(
        verbose_name=_("amount unit"),
        default=Decimal("20"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Points are given per full unit of this amount, rounded down."),
    )
    points_per_unit = models.PositiveIntegerField(
        _("points per unit"), default=1, validators=[MinValueValidator(1)]
    )
    apply_tier_multiplier = models.BooleanField(_("apply tier multiplier"), default=True)
    cap_per_transaction = models.PositiveIntegerField(
        _("cap per transaction"), null=True, blank=True
    )
    cap_per_day = models.PositiveIntegerField(_("cap per business day"), null=True, blank=True)
    cap_per_month = models.PositiveIntegerField(_("cap per month"), null=True, blank=True)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_to = models.DateField(_("valid to"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_unit__gt=0) & Q(min_amount__gte=0) & Q(points_per_unit__gt=0),
                name="points_rule_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language."""
        return translated(self, "name")


class Campaign(models.Model):
    """A time-boxed multiplier on earning rules, optionally for some tiers or a segment only."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100, blank=True)
    active = models.BooleanField(_("active"), default=True)
    multiplier = models.DecimalField(
        _("multiplier"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("2"),
        validators=[MinValueValidator(Decimal("1"))],
    )
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    rules = models.ManyToManyField(
        EarningRule,
        blank=True,
        related_name="campaigns",
        verbose_name=_("earning rules"),
        help_text=_("Empty means every rule."),
    )
    target_tiers = models.JSONField(
        _("target tiers"), default=list, blank=True, help_text=_("Tier codes; empty means all.")
    )
    target_segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("target segment"),
        help_text=_("Only members of this segment (as last refreshed); empty means all."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-starts_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=models.F("starts_on")) & Q(multiplier__gte=1),
                name="points_campaign_window_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language."""
        return translated(self, "name")

    def clean(self) -> None:
        """Target tiers name tiers that exist: a misspelt code would make the campaign apply to
        nobody, silently."""
        tier_codes_check(self.target_tiers, field="target_tiers")


class Adjustment(models.Model):
    """A manual correction: requested by one staff member, applied only when another approves."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="points_adjustments",
        verbose_name=_("member"),
    )
    points = models.BigIntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=500)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.CharField(_("decision note"), max_length=500, blank=True)
    entry = models.OneToOneField(
        Entry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adjustment",
        verbose_name=_("ledger entry"),
    )
    created_at = models.DateTimeField(_("requested at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("points adjustment")
        verbose_name_plural = _("points adjustments")
        ordering = ["-created_at"]
        permissions = [("approve_adjustment", _("Can approve or reject points adjustments"))]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="points_adjustment_nonzero"),
            models.CheckConstraint(
                condition=Q(status="pending") | ~Q(decided_by=models.F("requested_by")),
                name="points_adjustment_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member.customer_no} {self.points:+d} {self.get_status_display()}"

    @property
    def audit_id(self) -> str:
        return str(self.id)
