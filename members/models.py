import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.money import DEFAULT_CURRENCY, MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, MoneyField
from loyalty.timeutils import business_today
from loyalty.translation import translated

customer_no_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
    _("A customer number is 1 to 32 letters, digits, '-' or '_'."),
    code="invalid_customer_no",
)
phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 -]{5,19}$", _("Enter a valid phone number."), code="invalid_phone"
)


# The earliest date a tier evaluation may be as of: no bank has snapshots before it, and it
# keeps window arithmetic far from ``date.min``.
EARLIEST_AS_OF = dt.date(2000, 1, 1)


class Member(models.Model):
    """A customer of the bank in the programme, known by the bank's ``customer_no``."""

    class Gender(models.TextChoices):
        MALE = "male", _("Male")
        FEMALE = "female", _("Female")
        UNSPECIFIED = "unspecified", _("Unspecified")

    class RiskLevel(models.TextChoices):
        R1 = "R1", _("R1 conservative")
        R2 = "R2", _("R2 cautious")
        R3 = "R3", _("R3 balanced")
        R4 = "R4", _("R4 growth")
        R5 = "R5", _("R5 aggressive")

    class Language(models.TextChoices):
        ZH_HANS = "zh-hans", _("Simplified Chinese")
        EN = "en", _("English")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        CLOSED = "closed", _("Closed")

    customer_no = models.CharField(
        _("customer number"), max_length=32, unique=True, validators=[customer_no_validator]
    )
    name = models.CharField(_("name"), max_length=100)
    gender = models.CharField(
        _("gender"), max_length=12, choices=Gender.choices, default=Gender.UNSPECIFIED
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, validators=[phone_validator])
    email = models.EmailField(_("email"), blank=True)
    occupation = models.CharField(_("occupation"), max_length=100, blank=True)
    income_band = models.CharField(_("income band"), max_length=32, blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True, db_index=True)
    branch_code = models.CharField(_("branch code"), max_length=16, blank=True, db_index=True)
    credit_grade = models.CharField(_("credit grade"), max_length=8, blank=True)
    risk_level = models.CharField(
        _("risk level"), max_length=2, choices=RiskLevel.choices, blank=True
    )
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    preferred_language = models.CharField(
        _("preferred language"), max_length=8, choices=Language.choices, default=Language.ZH_HANS
    )
    joined_at = models.DateField(_("joined"), default=business_today, db_index=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)
    # When a closure became final (its notice period over, the points forfeited): no reopening.
    closure_final_at = models.DateTimeField(
        _("closure final"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["customer_no"]
        permissions = [
            ("issue_member_token", _("Can issue tokens that act as a member")),
            # Without it the console shows phone and email masked: in lists, pages, exports.
            ("view_member_contact", _("Can see members' contact data (phone, email)")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "frozen", "closed"]),
                name="member_status_valid",
            ),
        ]
        indexes = [
            # Closed members in a range of ids: a tier evaluation chunk counts the members it
            # evaluates as all ids in its range (the primary key alone) minus these.
            models.Index(
                fields=["id"], name="member_closed_idx", condition=models.Q(status="closed")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_no} {self.name}"

    @property
    def audit_id(self) -> str:
        return self.customer_no

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138****5678``. A mobile number (11 digits or more) keeps its first
    three and last four digits; a shorter number keeps at most its last quarter, so at least
    three quarters of any number stay hidden."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    keep = len(digits) // 4
    return "*" * (len(digits) - keep) + (digits[-keep:] if keep else "")


class AssetSnapshot(models.Model):
    """A member's assets and contribution on one date (one per member and ``as_of``)."""

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="snapshots", verbose_name=_("member")
    )
    as_of = models.DateField(_("as of"))
    deposits = MoneyField(verbose_name=_("deposits"), default=0)
    wealth = MoneyField(verbose_name=_("wealth products"), default=0)
    funds = MoneyField(verbose_name=_("funds"), default=0)
    insurance = MoneyField(verbose_name=_("insurance"), default=0)
    loans = MoneyField(verbose_name=_("loans"), default=0)
    aum = models.GeneratedField(
        expression=models.F("deposits")
        + models.F("wealth")
        + models.F("funds")
        + models.F("insurance"),
        output_field=models.DecimalField(
            max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
        ),
        db_persist=True,
        verbose_name=_("AUM"),
    )
    contribution = MoneyField(verbose_name=_("contribution"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default=DEFAULT_CURRENCY)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("asset snapshot")
        verbose_name_plural = _("asset snapshots")
        ordering = ["member", "-as_of"]
        constraints = [
            # Covering (INCLUDE): tier evaluation averages a range of members' snapshots from
            # the index alone, without visiting the table.
            models.UniqueConstraint(
                fields=["member", "as_of"],
                include=["aum", "contribution"],
                name="snapshot_member_as_of_uniq",
            ),
            models.CheckConstraint(
                condition=models.Q(deposits__gte=0)
                & models.Q(wealth__gte=0)
                & models.Q(funds__gte=0)
                & models.Q(insurance__gte=0)
                & models.Q(loans__gte=0),
                name="snapshot_balances_gte_0",
            ),
        ]
        indexes = [models.Index(fields=["as_of"], name="snapshot_as_of_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.as_of}"


class Message(models.Model):
    """An in-app message to a member, also the outbox a delivery task sends through a channel.

    Written in the member's preferred language when created. ``dedupe_key`` makes a message that a
    retried or re-run job would write twice exist once.
    """

    class Kind(models.TextChoices):
        TIER_CHANGE = "tier_change", _("Tier change")
        POINTS_EXPIRING = "points_expiring", _("Points expiring")
        POINTS = "points", _("Points")
        INVITATION = "invitation", _("Invitation")
        REDEMPTION = "redemption", _("Redemption")
        SURVEY = "survey", _("Survey")
        GENERAL = "general", _("General")

    class Delivery(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Looked up through ``message_member_created_idx`` (member first): no index of its own.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,  # checked once per statement (migration 0008, loyalty.db)
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"))
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    # Unique through ``message_dedupe_key_uniq`` (a constraint, not ``unique=True``, which
    # would add a second, pattern-matching index that nothing queries).
    dedupe_key = models.CharField(_("dedupe key"), max_length=200)
    # Read through ``message_member_created_idx`` (a member's messages) and
    # ``message_pending_idx`` (the outbox): no index of its own, one less write per message.
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    delivery = models.CharField(
        _("delivery"), max_length=8, choices=Delivery.choices, default=Delivery.PENDING
    )
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("member message")
        verbose_name_plural = _("member messages")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["member", "-created_at"], name="message_member_created_idx"),
            models.Index(
                fields=["created_at"],
                name="message_pending_idx",
                condition=models.Q(delivery="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="message_dedupe_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.title}"


tier_code_validator = RegexValidator(
    r"^[A-Z][A-Z0-9_]{0,31}$",
    _("A tier code is 1 to 32 capital letters, digits or '_', starting with a letter."),
    code="invalid_tier_code",
)


class Tier(models.Model):
    """A rung of the membership ladder, with what it takes to qualify and what it gives.

    A member qualifies for the highest active tier whose thresholds their average AUM and total
    contribution over the last ``window_months`` months of snapshots meet. An empty threshold is
    not required; a tier with no threshold at all is open to everyone (the base tier).
    """

    class Rule(models.TextChoices):
        ANY = "any", _("Either threshold is enough")
        ALL = "all", _("Both thresholds are needed")

    class DowngradeMode(models.TextChoices):
        ONE_STEP = "one_step", _("One tier at a time")
        TO_QUALIFIED = "to_qualified", _("Straight to the qualified tier")

    code = models.CharField(_("code"), max_length=32, unique=True, validators=[tier_code_validator])
    name_en = models.CharField(_("name (English)"), max_length=64)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=64, blank=True)
    rank = models.PositiveSmallIntegerField(
        _("rank"),
        unique=True,
        help_text=_("Higher ranks are better tiers; the lowest is the base."),
    )
    window_months = models.PositiveSmallIntegerField(
        _("qualification window (months)"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(24)],
        help_text=_(
            "Snapshots dated in this many calendar months, ending with the month of the "
            "evaluation date, are averaged (AUM) and summed (contribution)."
        ),
    )
    min_avg_aum = MoneyField(
        verbose_name=_("minimum average AUM"),
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Empty: AUM is not a criterion for this tier."),
    )
    min_contribution = MoneyField(
        verbose_name=_("minimum contribution over the window"),
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Empty: contribution is not a criterion for this tier."),
    )
    rule = models.CharField(
        _("qualification rule"),
        max_length=4,
        choices=Rule.choices,
        default=Rule.ANY,
        help_text=_("With both thresholds set: is meeting either enough, or are both needed?"),
    )
    multiplier = models.DecimalField(
        _("points multiplier"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Earning multiplies base points by this from the moment a member holds it."),
    )
    grace_periods = models.PositiveSmallIntegerField(
        _("grace periods"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(24)],
        help_text=_(
            "A member of this tier moves down only after failing its thresholds in this many "
            "consecutive evaluations; one passing evaluation resets the count. 1 = at once."
        ),
    )
    downgrade_mode = models.CharField(
        _("downgrade mode"),
        max_length=12,
        choices=DowngradeMode.choices,
        default=DowngradeMode.ONE_STEP,
        help_text=_(
            "Where a member of this tier goes when the grace periods run out. 'One tier at a "
            "time' (recommended) moves down a single rung, and a further step needs another full "
            "grace period: a customer whose assets dropped for a while (a maturing product, a "
            "house purchase) keeps most benefits and time to come back. 'Straight to the "
            "qualified tier' reflects the assets at once, so nobody holds benefits several tiers "
            "above what they bring."
        ),
    )
    active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Inactive tiers are not awarded; their members move at the next evaluation."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_avg_aum__isnull=True) | models.Q(min_avg_aum__gte=0),
                name="tier_min_avg_aum_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(min_contribution__isnull=True)
                | models.Q(min_contribution__gte=0),
                name="tier_min_contribution_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(multiplier__gte=0), name="tier_multiplier_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(window_months__gte=1, window_months__lte=24),
                name="tier_window_months_range",
            ),
            models.CheckConstraint(
                condition=models.Q(grace_periods__gte=1), name="tier_grace_periods_gte_1"
            ),
            models.CheckConstraint(
                condition=models.Q(rule__in=["any", "all"]), name="tier_rule_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(downgrade_mode__in=["one_step", "to_qualified"]),
                name="tier_downgrade_mode_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def name(self) -> str:
        return translated(self, "name")

    @property
    def audit_id(self) -> str:
        return self.code


def tier_codes_check(codes: Any, *, field: str) -> None:
    """Raise a ``ValidationError`` on ``field`` unless ``codes`` is a list of existing tier
    codes: a misspelt code in a target list would silently match nobody."""
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise ValidationError({field: _("A list of tier codes.")})
    unknown = sorted(
        set(codes) - set(Tier.objects.filter(code__in=codes).values_list("code", flat=True))
    )
    if unknown:
        raise ValidationError(
            {field: _("No such tier: %(codes)s.") % {"codes": ", ".join(unknown)}}
        )


class TierBenefit(models.Model):
    """What a tier gives: a machine-readable ``kind`` and a text shown to the member."""

    class Kind(models.TextChoices):
        FEE_WAIVER = "fee_waiver", _("Fee waiver")
        LOUNGE_ACCESS = "lounge_access", _("Airport lounge access")
        DEDICATED_MANAGER = "dedicated_manager", _("Dedicated relationship manager")
        BIRTHDAY_GIFT = "birthday_gift", _("Birthday gift")
        PRIORITY_SERVICE = "priority_service", _("Priority service")
        POINTS_BONUS = "points_bonus", _("Points bonus")
        HEALTH_CARE = "health_care", _("Health care services")
        OTHER = "other", _("Other")

    tier = models.ForeignKey(
        Tier, on_delete=models.CASCADE, related_name="benefits", verbose_name=_("tier")
    )
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    text_en = models.CharField(_("text (English)"), max_length=200)
    text_zh_hans = models.CharField(_("text (Simplified Chinese)"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("tier benefit")
        verbose_name_plural = _("tier benefits")
        ordering = ["tier__rank", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "kind"], name="tier_benefit_kind_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.tier_id} {self.kind}"

    @property
    def text(self) -> str:
        return translated(self, "text")


class TierOverride(models.Model):
    """A manual tier for one member, with a reason and an expiry, applied once a second person
    approves it. Evaluations keep the member in that tier until ``expires_at``."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="tier_overrides", verbose_name=_("member")
    )
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, related_name="overrides", verbose_name=_("tier")
    )
    reason = models.TextField(_("reason"))
    expires_at = models.DateTimeField(_("expires at"))
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved or rejected by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)

    class Meta:
        verbose_name = _("tier override")
        verbose_name_plural = _("tier overrides")
        ordering = ["-requested_at"]
        permissions = [("approve_tieroverride", _("Can approve or reject tier overrides"))]
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(status="pending"),
                name="tier_override_one_pending_per_member",
            ),
            # Maker-checker holds even for writes that bypass the services.
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | ~models.Q(decided_by=models.F("requested_by")),
                name="tier_override_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "rejected"]),
                name="tier_override_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} -> {self.tier_id} ({self.status})"


class TierEvaluationRun(models.Model):
    """One evaluation of every member's tier for an ``as_of`` date, with its progress.

    At most one run is queued or running at a time (a partial unique index). Its members are
    split into :class:`TierEvaluationChunk` ranges that workers claim and finish one transaction
    each, so a run interrupted by a crash resumes with the chunks that did not commit.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("On demand")
        SCHEDULE = "schedule", _("Schedule")

    run_id = models.UUIDField(_("run id"), default=uuid.uuid4, unique=True, editable=False)
    as_of = models.DateField(_("as of"))
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    trigger = models.CharField(
        _("trigger"), max_length=8, choices=Trigger.choices, default=Trigger.MANUAL
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    chunk_size = models.PositiveIntegerField(_("chunk size"), default=10_000)
    total = models.PositiveIntegerField(_("members to evaluate"), default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    upgraded = models.PositiveIntegerField(_("upgraded"), default=0)
    downgraded = models.PositiveIntegerField(_("downgraded"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("tier evaluation run")
        verbose_name_plural = _("tier evaluation runs")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                models.Value(True),
                condition=models.Q(status__in=["queued", "running"]),
                name="tier_run_one_active",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "done", "failed"]),
                name="tier_run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.as_of} {self.status} {self.run_id}"


class TierEvaluationChunk(models.Model):
    """Members with ``lo < id <= hi`` of one run. A worker claims a chunk (``SKIP LOCKED``),
    evaluates its members and marks it done in the same transaction, so several workers share
    a run and none evaluates a chunk twice."""

    run = models.ForeignKey(
        TierEvaluationRun, on_delete=models.CASCADE, related_name="chunks", verbose_name=_("run")
    )
    lo = models.BigIntegerField(_("after member id"))
    hi = models.BigIntegerField(_("up to member id"))
    done = models.BooleanField(_("done"), default=False)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    upgraded = models.PositiveIntegerField(_("upgraded"), default=0)
    downgraded = models.PositiveIntegerField(_("downgraded"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("tier evaluation chunk")
        verbose_name_plural = _("tier evaluation chunks")
        ordering = ["run", "lo"]
        constraints = [
            models.UniqueConstraint(fields=["run", "lo"], name="tier_chunk_run_lo_uniq"),
            models.CheckConstraint(
                condition=models.Q(hi__gt=models.F("lo")), name="tier_chunk_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} ({self.lo}, {self.hi}]"


class MemberTier(models.Model):
    """A member's current tier and where the member stands in the grace count.

    A member without a row holds the lowest active tier. ``failing_count`` is the number of
    consecutive evaluations the member failed the tier's thresholds; ``last_as_of`` is the
    latest evaluation date that changed this row, so re-running it cannot count twice.
    """

    member = models.OneToOneField(
        Member,
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="tier_state",
        verbose_name=_("member"),
        db_constraint=False,  # checked once per statement (migration 0008, loyalty.db)
    )
    # Indexes on the evaluation's high-volume tables are the ones reads use: ``tier`` through
    # ``member_tier_tier_idx``; a tier reference alone (a handful of tiers, never deleted) and
    # an override (rare) need none, or only over the rows that have one.
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("tier"),
        db_index=False,
        db_constraint=False,
    )
    since = models.DateTimeField(_("since"), default=timezone.now)
    failing_count = models.PositiveSmallIntegerField(
        _("consecutive failing evaluations"), default=0
    )
    qualified_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("qualified tier at the last evaluation"),
        db_index=False,
        db_constraint=False,
    )
    last_as_of = models.DateField(_("last evaluated as of"), null=True, blank=True)
    override = models.ForeignKey(
        TierOverride,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("override in force"),
        db_index=False,
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        indexes = [
            models.Index(fields=["tier"], name="member_tier_tier_idx"),
            models.Index(
                fields=["override"],
                name="member_tier_override_idx",
                condition=models.Q(override__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.tier_id}"


class TierHistory(models.Model):
    """Every change of a member's tier, with why and what the evaluation saw. Append-only."""

    class Reason(models.TextChoices):
        UPGRADE = "upgrade", _("Qualified for a higher tier")
        DOWNGRADE = "downgrade", _("Grace periods ended below the tier's thresholds")
        OVERRIDE = "override", _("Manual override approved")
        OVERRIDE_EXPIRED = "override_expired", _("Manual override expired")
        TIER_RETIRED = "tier_retired", _("The tier was deactivated")

    # Member, tier and run references are checked once per statement (a chunk writes tens of
    # thousands of rows at once), not by a per-row foreign key: see loyalty.db.
    # As for MemberTier: ``member`` is found through ``tier_history_member_idx``, ``run``
    # through ``tier_history_run_member_uniq``, tiers need no index, overrides a partial one.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="tier_history",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    from_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from tier"),
        db_index=False,
        db_constraint=False,
    )
    to_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("to tier"),
        db_index=False,
        db_constraint=False,
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    run = models.ForeignKey(
        TierEvaluationRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="changes",
        verbose_name=_("evaluation run"),
        db_index=False,
        db_constraint=False,
    )
    override = models.ForeignKey(
        TierOverride,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("override"),
        db_index=False,
    )
    as_of = models.DateField(_("as of"), null=True, blank=True)
    avg_aum = MoneyField(verbose_name=_("average AUM"), null=True, blank=True)
    contribution = MoneyField(verbose_name=_("contribution"), null=True, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)

    class Meta:
        verbose_name = _("tier history entry")
        verbose_name_plural = _("tier history")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["member", "-occurred_at"], name="tier_history_member_idx"),
            models.Index(
                fields=["override"],
                name="tier_history_override_idx",
                condition=models.Q(override__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run", "member"], name="tier_history_run_member_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.from_tier_id} -> {self.to_tier_id}"


class Segment(models.Model):
    """A saved rule over member attributes (``members.segments`` validates and compiles it);
    its members are stored by the refresh (``SegmentMember``), counted in ``member_count``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name_en = models.CharField(_("name (English)"), max_length=100, unique=True)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100, blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_zh_hans = models.TextField(_("description (Simplified Chinese)"), blank=True)
    rule = models.JSONField(_("rule"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    member_count = models.PositiveIntegerField(_("members"), default=0, editable=False)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name_en"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return translated(self, "name")

    @property
    def description(self) -> str:
        return translated(self, "description")


class SegmentMember(models.Model):
    """A member of a segment as of its last refresh. Written set-based by the refresh only."""

    pk = models.CompositePrimaryKey("segment_id", "member_id")
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="+", verbose_name=_("segment")
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="+", verbose_name=_("member")
    )

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")

    def __str__(self) -> str:
        return f"{self.segment_id} {self.member_id}"


class MemberValue(models.Model):
    """A member's customer value and churn risk, refreshed with the KPIs (``insights``).

    ``score`` (0-100) weighs contribution, AUM level and trend, and activity (recency,
    frequency, monetary); ``churn_reasons`` lists why ``churn_risk`` is set (codes of
    :class:`ChurnReason`), empty when it is not.
    """

    class ChurnReason(models.TextChoices):
        AUM_DOWN_3_MONTHS = "aum_down_3_months", _("AUM down three months running")
        NO_ACTIVITY_90_DAYS = "no_activity_90_days", _("No activity in 90 days")

    member = models.OneToOneField(
        Member,
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="value",
        verbose_name=_("member"),
    )
    as_of = models.DateField(_("as of"))
    score = models.DecimalField(_("value score"), max_digits=5, decimal_places=2)
    contribution_score = models.DecimalField(
        _("contribution score"), max_digits=5, decimal_places=2
    )
    aum_score = models.DecimalField(_("AUM score"), max_digits=5, decimal_places=2)
    activity_score = models.DecimalField(_("activity score"), max_digits=5, decimal_places=2)
    aum_trend = models.DecimalField(
        _("AUM trend"),
        max_digits=9,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_("Relative change of AUM over the last three months (0.1 = up 10%)."),
    )
    recency_days = models.PositiveIntegerField(_("days since last activity"), null=True, blank=True)
    frequency = models.PositiveIntegerField(_("transactions in 90 days"), default=0)
    monetary = MoneyField(verbose_name=_("amount in 90 days"), default=0)
    churn_risk = models.BooleanField(_("churn risk"), default=False)
    churn_reasons = models.JSONField(_("churn reasons"), default=list, blank=True)
    refreshed_at = models.DateTimeField(_("refreshed at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer value")
        verbose_name_plural = _("customer values")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=0, score__lte=100)
                & models.Q(contribution_score__gte=0, contribution_score__lte=100)
                & models.Q(aum_score__gte=0, aum_score__lte=100)
                & models.Q(activity_score__gte=0, activity_score__lte=100),
                name="member_value_scores_0_100",
            ),
            models.CheckConstraint(
                condition=models.Q(churn_risk=False, churn_reasons=[])
                | models.Q(churn_risk=True) & ~models.Q(churn_reasons=[]),
                name="member_value_churn_risk_has_reasons",
            ),
        ]
        indexes = [
            models.Index(
                fields=["member"],
                name="member_value_churn_idx",
                condition=models.Q(churn_risk=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.score}"
