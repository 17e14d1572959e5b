from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.money import DEFAULT_CURRENCY, MoneyField


class ProgrammeSettings(models.Model):
    """Programme-wide settings staff edit in the admin; exactly one row (``pk=1``)."""

    class ExpiryPolicy(models.TextChoices):
        END_OF_MONTH = "end_of_month", _("End of the month, N months after earning")
        EXACT = "exact", _("N months after earning, to the day")
        NEVER = "never", _("Points never expire")

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    point_value = models.DecimalField(
        _("point value"),
        max_digits=18,
        decimal_places=6,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("What one point is worth to the bank, used for the points liability."),
    )
    currency = models.CharField(_("currency"), max_length=3, default=DEFAULT_CURRENCY)
    expiry_policy = models.CharField(
        _("expiry policy"),
        max_length=16,
        choices=ExpiryPolicy.choices,
        default=ExpiryPolicy.END_OF_MONTH,
    )
    expiry_months = models.PositiveSmallIntegerField(
        _("expiry months"),
        default=24,
        validators=[MinValueValidator(1)],
        help_text=_("How many months earned points stay valid."),
    )
    expiry_warning_days = models.PositiveSmallIntegerField(
        _("expiry warning days"),
        default=30,
        help_text=_("Members are told this many days before their points expire."),
    )
    oldest_transaction_days = models.PositiveSmallIntegerField(
        _("oldest transaction (days)"),
        default=400,
        validators=[MinValueValidator(1)],
        help_text=_("A transaction that happened longer ago than this is rejected on arrival."),
    )
    largest_transaction_amount = MoneyField(
        verbose_name=_("largest transaction amount"),
        default=Decimal("100000000.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("A single transaction over this amount is rejected on arrival."),
    )
    closure_notice_days = models.PositiveSmallIntegerField(
        _("closure notice (days)"),
        default=30,
        help_text=_(
            "A closed member keeps their points this many days, during which staff can reopen "
            "the membership; then the points are forfeited."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("programme settings")
        verbose_name_plural = _("programme settings")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="programme_settings_singleton"),
            models.CheckConstraint(
                condition=models.Q(point_value__gte=0), name="programme_settings_point_value_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return str(_("Programme settings"))


class AuditAction(models.TextChoices):
    """Every action the audit log records, ``<subject>.<verb>``: one list, so the admin can
    filter and label them and a misspelt action cannot be written. An app adds its own here."""

    MEMBER_CREATE = "member.create", _("Member created")
    MEMBER_UPDATE = "member.update", _("Member updated")
    MEMBER_FREEZE = "member.freeze", _("Member frozen")
    MEMBER_UNFREEZE = "member.unfreeze", _("Member unfrozen")
    MEMBER_CLOSE = "member.close", _("Member closed")
    MEMBER_REOPEN = "member.reopen", _("Member reopened")
    TIER_CREATE = "tier.create", _("Tier created")
    TIER_UPDATE = "tier.update", _("Tier changed")
    TIER_EVALUATION_START = "tier_evaluation.start", _("Tier evaluation started")
    TIER_EVALUATION_RESUME = "tier_evaluation.resume", _("Tier evaluation resumed")
    TIER_OVERRIDE_REQUEST = "tier_override.request", _("Tier override requested")
    TIER_OVERRIDE_APPROVE = "tier_override.approve", _("Tier override approved")
    TIER_OVERRIDE_REJECT = "tier_override.reject", _("Tier override rejected")
    POINTS_FORFEIT = "points.forfeit", _("Points forfeited")
    POINTS_TRANSACTION_RETRY = "points.transaction_retry", _("Transaction retried")
    POINTS_ADJUSTMENT_REQUEST = "points.adjustment_request", _("Points adjustment requested")
    POINTS_ADJUSTMENT_APPROVE = "points.adjustment_approve", _("Points adjustment approved")
    POINTS_ADJUSTMENT_REJECT = "points.adjustment_reject", _("Points adjustment rejected")
    EARNING_RULE_CREATE = "earning_rule.create", _("Earning rule created")
    EARNING_RULE_UPDATE = "earning_rule.update", _("Earning rule changed")
    CAMPAIGN_CREATE = "campaign.create", _("Campaign created")
    CAMPAIGN_UPDATE = "campaign.update", _("Campaign changed")
    PROGRAMME_SETTINGS_UPDATE = "programme_settings.update", _("Programme settings changed")
    REWARD_CREATE = "reward.create", _("Reward created")
    REWARD_UPDATE = "reward.update", _("Reward changed")
    REWARD_STOCK_CHANGE = "reward.stock_change", _("Reward stock changed")
    REWARD_CODES_ADD = "reward.codes_add", _("Coupon codes added")
    REDEMPTION_FULFIL = "redemption.fulfil", _("Redemption fulfilled")
    REDEMPTION_CANCEL = "redemption.cancel", _("Redemption cancelled")
    REDEMPTION_CASH_PAID = "redemption.cash_paid", _("Redemption co-payment paid")
    EVENT_CREATE = "event.create", _("Event created")
    EVENT_UPDATE = "event.update", _("Event changed")
    EVENT_PUBLISH = "event.publish", _("Event published")
    EVENT_CANCEL = "event.cancel", _("Event cancelled")
    SEGMENT_CREATE = "segment.create", _("Segment created")
    SEGMENT_UPDATE = "segment.update", _("Segment changed")
    SURVEY_CREATE = "survey.create", _("Survey created")
    SURVEY_SEND = "survey.send", _("Survey sent")
    SURVEY_CLOSE = "survey.close", _("Survey closed")


class AuditLog(models.Model):
    """Who changed what, when and why. Append-only: the database refuses UPDATE and DELETE."""

    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(_("actor label"), max_length=150)
    action = models.CharField(
        _("action"), max_length=64, choices=AuditAction.choices, db_index=True
    )
    target_type = models.CharField(_("target type"), max_length=64)
    target_id = models.CharField(_("target id"), max_length=64)
    before = models.JSONField(_("before"), null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(_("after"), null=True, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class IdempotencyRecord(models.Model):
    """The first response to a request made with an ``Idempotency-Key``, per caller and key."""

    caller = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=512)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_caller_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"


class StaffNotice(models.Model):
    """Something staff must act on (a coupon pool running low), shown in the admin; written
    once per ``dedupe_key``."""

    class Kind(models.TextChoices):
        CODES_LOW = "codes_low", _("Coupon codes running low")
        GENERAL = "general", _("General")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    role = models.CharField(_("for role"), max_length=32)
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, unique=True)
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("staff notice")
        verbose_name_plural = _("staff notices")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title
