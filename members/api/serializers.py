from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty.api.batch import BatchItemSerializer
from loyalty.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from loyalty.timeutils import business_today
from members.api.tiers import TierHistoryOutputSerializer, TierRefSerializer
from members.models import (
    AssetSnapshot,
    Member,
    Message,
    customer_no_validator,
    phone_validator,
)
from members.selectors import member_tier_get, member_tier_history, member_tier_standing


def _not_in_future(value):
    if value is not None and value > business_today():
        raise serializers.ValidationError(_("This date is in the future."), code="future_date")
    return value


class MemberInputSerializer(serializers.Serializer):
    """``PUT /api/v1/members/{customer_no}/``: only ``name`` is required on create."""

    name = serializers.CharField(max_length=100, required=False)
    gender = serializers.ChoiceField(choices=Member.Gender.choices, required=False)
    birth_date = serializers.DateField(required=False, allow_null=True, validators=[_not_in_future])
    phone = serializers.CharField(
        max_length=20, required=False, allow_blank=True, validators=[phone_validator]
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    occupation = serializers.CharField(max_length=100, required=False, allow_blank=True)
    income_band = serializers.CharField(max_length=32, required=False, allow_blank=True)
    city = serializers.CharField(max_length=64, required=False, allow_blank=True)
    branch_code = serializers.CharField(max_length=16, required=False, allow_blank=True)
    credit_grade = serializers.CharField(max_length=8, required=False, allow_blank=True)
    risk_level = serializers.ChoiceField(
        choices=Member.RiskLevel.choices, required=False, allow_blank=True
    )
    marketing_consent = serializers.BooleanField(required=False)
    preferred_language = serializers.ChoiceField(choices=Member.Language.choices, required=False)
    joined_at = serializers.DateField(required=False, validators=[_not_in_future])
    status = serializers.ChoiceField(choices=Member.Status.choices, required=False)

    def validate(self, attrs):
        unknown = (
            set(self.initial_data) - set(self.fields)
            if isinstance(self.initial_data, dict)
            else set()
        )
        if unknown:
            raise serializers.ValidationError(
                {name: [_("Unknown field.")] for name in sorted(unknown)}, code="unknown_field"
            )
        if self.context.get("creating") and not attrs.get("name"):
            raise serializers.ValidationError(
                {
                    "name": [
                        serializers.ErrorDetail(_("A new member needs a name."), code="required")
                    ]
                }
            )
        return attrs


class SnapshotOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AssetSnapshot
        fields = [
            "as_of",
            "deposits",
            "wealth",
            "funds",
            "insurance",
            "loans",
            "aum",
            "contribution",
            "currency",
        ]


class MemberOutputSerializer(serializers.ModelSerializer):
    """A member as staff see it; the phone is always masked."""

    phone = serializers.CharField(source="phone_masked", read_only=True)
    aum = serializers.DecimalField(
        source="latest_aum",
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        read_only=True,
        allow_null=True,
        default=None,
    )
    contribution = serializers.DecimalField(
        source="latest_contribution",
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        read_only=True,
        allow_null=True,
        default=None,
    )
    assets_as_of = serializers.DateField(
        source="latest_as_of", read_only=True, allow_null=True, default=None
    )
    currency = serializers.SerializerMethodField()
    tier_code = serializers.CharField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Member
        fields = [
            "customer_no",
            "name",
            "gender",
            "birth_date",
            "phone",
            "email",
            "occupation",
            "income_band",
            "city",
            "branch_code",
            "credit_grade",
            "risk_level",
            "marketing_consent",
            "preferred_language",
            "joined_at",
            "status",
            "aum",
            "contribution",
            "currency",
            "assets_as_of",
            "tier_code",
            "created_at",
            "updated_at",
        ]

    def get_currency(self, member) -> str:
        return "CNY"


class MemberTierOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    since = serializers.DateField(allow_null=True)
    multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)
    failing_evaluations = serializers.IntegerField()
    override_until = serializers.DateTimeField(allow_null=True)


class MemberDetailOutputSerializer(MemberOutputSerializer):
    snapshots = serializers.SerializerMethodField()
    tier = serializers.SerializerMethodField()
    tier_history = serializers.SerializerMethodField()

    class Meta(MemberOutputSerializer.Meta):
        fields = [*MemberOutputSerializer.Meta.fields, "tier", "snapshots", "tier_history"]

    def get_snapshots(self, member) -> list[dict]:
        rows = member.snapshots.order_by("-as_of")[:12]
        # ``.data`` of a many=True serializer is a ReturnList; the stubs say ReturnDict.
        return SnapshotOutputSerializer(rows, many=True).data  # type: ignore[return-value]

    @extend_schema_field(MemberTierOutputSerializer(allow_null=True))
    def get_tier(self, member) -> dict | None:
        standing = member_tier_standing(member=member)
        tier = standing["tier"]
        if tier is None:
            return None
        warning = standing["downgrade_warning"]
        return MemberTierOutputSerializer(
            {
                "code": tier.code,
                "name": tier.name,
                "since": standing["since"],
                "multiplier": standing["multiplier"],
                "failing_evaluations": warning["failing_evaluations"] if warning else 0,
                "override_until": standing["override_until"],
            }
        ).data

    @extend_schema_field(TierHistoryOutputSerializer(many=True))
    def get_tier_history(self, member) -> list[dict]:
        # ``.data`` of a many=True serializer is a ReturnList; the stubs say ReturnDict.
        return TierHistoryOutputSerializer(member_tier_history(member=member), many=True).data  # type: ignore[return-value]


class MeOutputSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(source="phone_masked", read_only=True)
    tier = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = [
            "customer_no",
            "name",
            "gender",
            "birth_date",
            "phone",
            "email",
            "occupation",
            "city",
            "marketing_consent",
            "preferred_language",
            "joined_at",
            "status",
            "tier",
        ]

    @extend_schema_field(TierRefSerializer(allow_null=True))
    def get_tier(self, member) -> dict | None:
        tier = member_tier_get(member=member)
        return {"code": tier.code, "name": tier.name} if tier else None


class _Amount(serializers.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", 0)
        super().__init__(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs)


class AssetSnapshotItemSerializer(BatchItemSerializer):
    customer_no = serializers.CharField(max_length=32, validators=[customer_no_validator])
    as_of = serializers.DateField(validators=[_not_in_future])
    deposits = _Amount(min_value=0)
    wealth = _Amount(min_value=0)
    funds = _Amount(min_value=0)
    insurance = _Amount(min_value=0)
    loans = _Amount(min_value=0)
    contribution = _Amount()
    currency = serializers.ChoiceField(choices=[("CNY", "CNY")], required=False, default="CNY")

    def validate_customer_no(self, value):
        member_id = self.context["member_ids"].get(value)
        if member_id is None:
            raise serializers.ValidationError(
                _("Unknown customer number."), code="unknown_customer"
            )
        return value

    def validate(self, attrs):
        attrs["member_id"] = self.context["member_ids"][attrs["customer_no"]]
        return attrs


class AssetSnapshotBatchSerializer(serializers.Serializer):
    """The request body, for the schema: each item is validated alone by the view."""

    snapshots = AssetSnapshotItemSerializer(many=True)


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())


class MemberTokenInputSerializer(serializers.Serializer):
    customer_no = serializers.CharField(max_length=32)


class MemberTokenOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    customer_no = serializers.CharField()


class MessageOutputSerializer(serializers.ModelSerializer):
    read = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "kind", "title", "body", "data", "created_at", "read", "read_at"]

    def get_read(self, message) -> bool:
        return message.read_at is not None
