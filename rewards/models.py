"""The reward catalogue, its stock and coupon codes, and members' redemptions.

The database holds the limits itself: a reward's stock never goes below zero, a month's budget
is never overspent (check constraints the conditional updates of ``rewards.services`` rely on),
a coupon code belongs to at most one redemption, and a redemption's status only moves forward
(``pending`` to ``fulfilled`` or ``cancelled``, enforced by a trigger).
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.money import DEFAULT_CURRENCY, MoneyField
from loyalty.translation import translated
from members.models import Member, tier_codes_check
from points.models import Entry


class Category(models.TextChoices):
    GIFT = "gift", _("Gift")
    COUPON = "coupon", _("Coupon")
    VOUCHER = "voucher", _("Voucher")
    FEE_WAIVER = "fee_waiver", _("Fee waiver")
    EXPERIENCE = "experience", _("Experience")


# The categories that hand out a code from the reward's pool.
CODE_CATEGORIES = (Category.COUPON, Category.VOUCHER)


class LimitPeriod(models.TextChoices):
    """The period a per-member limit counts over, in the business time zone."""

    DAY = "day", _("Day")
    MONTH = "month", _("Month")
    YEAR = "year", _("Year")
    LIFETIME = "lifetime", _("Lifetime")


class Reward(models.Model):
    """Something members redeem points for."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    category = models.CharField(_("category"), max_length=16, choices=Category.choices)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100, blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_zh_hans = models.TextField(_("description (Simplified Chinese)"), blank=True)
    image = models.ImageField(_("image"), upload_to="rewards/", blank=True)
    points_price = models.PositiveIntegerField(_("points price"), validators=[MinValueValidator(1)])
    cash_price = MoneyField(
        verbose_name=_("cash co-payment"),
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(_("currency"), max_length=3, default=DEFAULT_CURRENCY)
    stock = models.PositiveIntegerField(
        _("stock left"),
        null=True,
        blank=True,
        help_text=_("Empty means unlimited. Redemptions take from it, cancellations give back."),
    )
    eligible_tiers = models.JSONField(
        _("eligible tiers"), default=list, blank=True, help_text=_("Tier codes; empty means all.")
    )
    limit_per_member = models.PositiveIntegerField(
        _("limit per member"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Most a member may redeem per period; empty means no limit."),
    )
    limit_period = models.CharField(
        _("limit period"), max_length=8, choices=LimitPeriod.choices, default=LimitPeriod.LIFETIME
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_to = models.DateTimeField(_("valid to"), null=True, blank=True)
    monthly_points_budget = models.PositiveBigIntegerField(
        _("monthly points budget"),
        null=True,
        blank=True,
        help_text=_("Most points redemptions of this reward may consume per calendar month."),
    )
    low_codes_threshold = models.PositiveIntegerField(
        _("low codes threshold"),
        default=20,
        help_text=_("Staff are told when fewer unused coupon codes are left."),
    )
    active = models.BooleanField(_("active"), default=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["position", "points_price", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(points_price__gt=0), name="rewards_price_positive"),
            models.CheckConstraint(
                condition=Q(cash_price__gte=0), name="rewards_cash_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(stock__gte=0), name="rewards_stock_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(limit_per_member__isnull=True) | Q(limit_per_member__gt=0),
                name="rewards_limit_positive",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_to__isnull=True)
                | Q(valid_to__gt=models.F("valid_from")),
                name="rewards_window_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language."""
        return translated(self, "name")

    @property
    def description(self) -> str:
        return translated(self, "description")

    def clean(self) -> None:
        tier_codes_check(self.eligible_tiers, field="eligible_tiers")

    @property
    def uses_codes(self) -> bool:
        """Coupons and vouchers hand out a code from the reward's pool."""
        return self.category in CODE_CATEGORIES


class BudgetMonth(models.Model):
    """Points a reward's redemptions consumed in one month (the first day names it)."""

    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="budget_months", verbose_name=_("reward")
    )
    month = models.DateField(_("month"))
    points_spent = models.BigIntegerField(_("points spent"), default=0)

    class Meta:
        verbose_name = _("budget month")
        verbose_name_plural = _("budget months")
        constraints = [
            models.UniqueConstraint(fields=["reward", "month"], name="rewards_budget_month_once"),
            models.CheckConstraint(
                condition=Q(points_spent__gte=0), name="rewards_budget_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reward_id} {self.month:%Y-%m}: {self.points_spent}"


class CouponCode(models.Model):
    """One code of a reward's pool, held by at most one redemption: a redemption takes free
    codes with ``FOR UPDATE SKIP LOCKED``, a cancellation gives them back."""

    id = models.BigAutoField(primary_key=True)
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="codes", verbose_name=_("reward")
    )
    code = models.CharField(_("code"), max_length=64)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    redemption = models.ForeignKey(
        "Redemption",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="codes",
        verbose_name=_("redemption"),
    )
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("coupon code")
        verbose_name_plural = _("coupon codes")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["reward", "code"], name="rewards_code_once"),
        ]
        indexes = [
            models.Index(
                fields=["reward", "id"],
                name="rewards_code_free_idx",
                condition=Q(redemption__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Redemption(models.Model):
    """A member's redemption of a reward: points debited, stock and codes taken, at once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        FULFILLED = "fulfilled", _("Fulfilled")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    points_spent = models.PositiveBigIntegerField(_("points spent"))
    cash_amount = MoneyField(verbose_name=_("cash co-payment"), default=Decimal("0.00"))
    currency = models.CharField(_("currency"), max_length=3, default=DEFAULT_CURRENCY)
    cash_paid_at = models.DateTimeField(_("cash paid at"), null=True, blank=True)
    cash_payment_reference = models.CharField(_("payment reference"), max_length=64, blank=True)
    budget_month = models.DateField(
        _("budget month"),
        null=True,
        blank=True,
        help_text=_("The month whose points budget this redemption used (empty: none)."),
    )
    status = models.CharField(
        _("status"), max_length=9, choices=Status.choices, default=Status.PENDING
    )
    debit = models.OneToOneField(
        Entry, on_delete=models.PROTECT, related_name="+", verbose_name=_("debit entry")
    )
    refund = models.OneToOneField(
        Entry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("refund entry"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)
    fulfilled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("fulfilled by"),
    )
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
        help_text=_("Empty when the member cancelled."),
    )
    cancel_reason = models.CharField(_("cancellation reason"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at"]
        permissions = [
            ("fulfil_redemption", _("Can fulfil redemptions")),
            ("cancel_redemption", _("Can cancel redemptions")),
            ("record_cash_payment", _("Can record a redemption's cash co-payment")),
        ]
        indexes = [
            # A member's redemptions of a reward since a period's start (the per-member limit).
            models.Index(
                fields=["member", "reward", "created_at"], name="rewards_member_limit_idx"
            ),
            models.Index(fields=["status", "created_at"], name="rewards_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(points_spent__gt=0) & Q(cash_amount__gte=0),
                name="rewards_redemption_amounts_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="pending", refund__isnull=True, fulfilled_at__isnull=True)
                    | Q(status="fulfilled", refund__isnull=True, fulfilled_at__isnull=False)
                    | Q(status="cancelled", refund__isnull=False, cancelled_at__isnull=False)
                ),
                name="rewards_redemption_status_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reward} x{self.quantity} ({self.get_status_display()})"
