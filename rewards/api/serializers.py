"""What the rewards API says about a reward and a redemption."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty.api.permissions import is_member
from loyalty.api.serializers import MoneyField
from rewards.models import Category, LimitPeriod, Redemption, Reward
from rewards.selectors import INELIGIBLE_REASONS


class RewardManagementSerializer(serializers.ModelSerializer):
    """What staff keep about a reward (absent for members)."""

    class Meta:
        model = Reward
        fields = [
            "code",
            "name_en",
            "name_zh_hans",
            "description_en",
            "description_zh_hans",
            "stock",
            "monthly_points_budget",
            "low_codes_threshold",
            "position",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RewardOutputSerializer(serializers.Serializer):
    """A reward in the caller's language. For a member, ``eligible`` and
    ``ineligible_reason`` (a stable code; ``ineligible_detail`` says it in words) tell whether
    they may redeem it now; for staff both are null and ``management`` holds the rest."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    image_url = serializers.SerializerMethodField()
    points_price = serializers.IntegerField()
    cash_price = MoneyField()
    currency = serializers.CharField()
    stock_left = serializers.SerializerMethodField()
    eligible_tiers = serializers.ListField(child=serializers.CharField())
    limit_per_member = serializers.IntegerField(allow_null=True)
    limit_period = serializers.ChoiceField(choices=LimitPeriod.choices)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_to = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField()
    eligible = serializers.SerializerMethodField()
    ineligible_reason = serializers.SerializerMethodField()
    ineligible_detail = serializers.SerializerMethodField()
    management = serializers.SerializerMethodField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, reward: Reward) -> str | None:
        if not reward.image:
            return None
        request = self.context.get("request")
        url = reward.image.url
        return request.build_absolute_uri(url) if request else url

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_stock_left(self, reward: Reward) -> int | None:
        """Null: unlimited. For coupons, also no more than the unused codes."""
        return getattr(reward, "stock_left", reward.stock)

    def _reason(self, reward: Reward) -> str | None:
        return getattr(reward, "ineligible_reason", None)

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_eligible(self, reward: Reward) -> bool | None:
        if not self._for_member(reward):
            return None
        return self._reason(reward) is None

    @extend_schema_field(serializers.ChoiceField(choices=list(INELIGIBLE_REASONS), allow_null=True))
    def get_ineligible_reason(self, reward: Reward) -> str | None:
        return self._reason(reward)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_ineligible_detail(self, reward: Reward) -> str | None:
        reason = self._reason(reward)
        return str(INELIGIBLE_REASONS[reason]) if reason else None

    @extend_schema_field(RewardManagementSerializer(allow_null=True))
    def get_management(self, reward: Reward) -> dict[str, Any] | None:
        if self._for_member(reward):
            return None
        return RewardManagementSerializer(reward).data

    def _for_member(self, reward: Reward) -> bool:
        request = self.context.get("request")
        return request is not None and is_member(request.user)


class RedemptionOutputSerializer(serializers.ModelSerializer):
    """A redemption. ``coupon_code`` is the first code given (``coupon_codes`` all of them, one
    per unit, in the order given); both are empty once it is cancelled (its codes are void)."""

    reward_id = serializers.UUIDField()
    reward_name = serializers.SerializerMethodField()
    customer_no = serializers.CharField(source="member.customer_no")
    cash_amount = MoneyField()
    cash_paid = serializers.SerializerMethodField()
    coupon_code = serializers.SerializerMethodField()
    coupon_codes = serializers.SerializerMethodField()

    class Meta:
        model = Redemption
        fields = [
            "id",
            "reward_id",
            "reward_name",
            "customer_no",
            "quantity",
            "points_spent",
            "cash_amount",
            "currency",
            "cash_paid",
            "status",
            "coupon_code",
            "coupon_codes",
            "created_at",
            "fulfilled_at",
            "cancelled_at",
        ]
        read_only_fields = fields

    def get_reward_name(self, redemption: Redemption) -> str:
        return redemption.reward.name

    def get_cash_paid(self, redemption: Redemption) -> bool:
        return redemption.cash_paid_at is not None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_coupon_codes(self, redemption: Redemption) -> list[str]:
        # Prefetched in code order by the selectors (rewards.selectors.redemption_list); read
        # once per redemption for both fields.
        if redemption.status == Redemption.Status.CANCELLED:
            return []  # void: a cancelled redemption's codes are never used
        codes = getattr(redemption, "_code_list", None)
        if codes is None:
            codes = [code.code for code in redemption.codes.all()]
            redemption._code_list = codes  # type: ignore[attr-defined]
        return codes

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_coupon_code(self, redemption: Redemption) -> str | None:
        codes = self.get_coupon_codes(redemption)
        return codes[0] if codes else None
