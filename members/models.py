import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.money import DEFAULT_CURRENCY, MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, MoneyField
from loyalty.timeutils import business_today

customer_no_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
    _("A customer number is 1 to 32 letters, digits, '-' or '_'."),
    code="invalid_customer_no",
)
phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 -]{5,19}$", _("Enter a valid phone number."), code="invalid_phone"
)


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
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["customer_no"]
        permissions = [("issue_member_token", _("Can issue tokens that act as a member"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "frozen", "closed"]),
                name="member_status_valid",
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
            models.UniqueConstraint(fields=["member", "as_of"], name="snapshot_member_as_of_uniq"),
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
        GENERAL = "general", _("General")

    class Delivery(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="messages", verbose_name=_("member")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"))
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
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

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.title}"
