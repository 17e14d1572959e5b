"""Output shapes that several members views answer with, and the asset-snapshot item.

A shape that only one view uses is nested in that view (``InputSerializer``,
``OutputSerializer``); the ones here are shared: the staff member row and its detail, the
member's own profile, a message, a tier reference, a tier-history row. ``/me/`` and the staff
detail are composed from :class:`MeOutputSerializer` and :class:`MemberDetailOutputSerializer`
with the sections other apps register (``members.api.sections``).
"""

import re
from typing import Any, cast

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from loyalty.api.batch import BatchItemSerializer, batch_validate
from loyalty.api.serializers import MoneyField, not_in_future
from members.models import (
    AssetSnapshot,
    Member,
    MemberValue,
    Message,
    TierBenefit,
    TierHistory,
    customer_no_validator,
)
from members.selectors import (
    member_ids_by_customer_no,
    member_snapshots,
    member_tier_get,
    member_tier_history,
    member_tier_standing,
    member_value_get,
)

# RegexValidator compiles ``regex`` in __init__; the stubs still allow the uncompiled str.
CUSTOMER_NO_PATTERN = cast(re.Pattern[str], customer_no_validator.regex).pattern

CUSTOMER_NO_PATH = OpenApiParameter(
    "customer_no",
    str,
    OpenApiParameter.PATH,
    pattern=CUSTOMER_NO_PATTERN,
    description="The member's customer number (1 to 32 letters, digits, '-' or '_').",
)
"""The ``{customer_no}`` of a path, for ``extend_schema(parameters=[...])``: its pattern."""


@extend_schema_field({"type": "string", "pattern": CUSTOMER_NO_PATTERN})
class CustomerNoField(serializers.CharField):
    """A request's reference to an existing member. The schema shows the customer number's
    pattern; a value that does not match names no member, so it answers 404 ``not_found``
    like any other unknown number (a field that stores a number validates it with
    ``customer_no_validator`` instead)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)


class MultiplierField(serializers.DecimalField):
    """A tier's points multiplier (``"1.50"``), ``NUMERIC(5, 2)`` like its column."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=5, decimal_places=2, **kwargs)


class TierRefSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class BenefitOutputSerializer(serializers.ModelSerializer):
    text = serializers.CharField(read_only=True)

    class Meta:
        model = TierBenefit
        fields = ["kind", "text"]


class TierHistoryOutputSerializer(serializers.ModelSerializer):
    from_tier = serializers.CharField(source="from_tier.code", allow_null=True, default=None)
    to_tier = serializers.CharField(source="to_tier.code")
    run_id = serializers.UUIDField(source="run.run_id", allow_null=True, default=None)
    avg_aum = MoneyField(allow_null=True)
    contribution = MoneyField(allow_null=True)

    class Meta:
        model = TierHistory
        fields = [
            "from_tier",
            "to_tier",
            "reason",
            "as_of",
            "avg_aum",
            "contribution",
            "run_id",
            "occurred_at",
        ]


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

    # A row of the list and the head of the detail; reads the ``latest_*`` and ``tier_code``
    # annotations of ``member_list()``.

    phone = serializers.CharField(source="phone_masked", read_only=True)
    aum = MoneyField(source="latest_aum", read_only=True, allow_null=True, default=None)
    contribution = MoneyField(
        source="latest_contribution", read_only=True, allow_null=True, default=None
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
    multiplier = MultiplierField()
    failing_evaluations = serializers.IntegerField()
    override_until = serializers.DateTimeField(allow_null=True)


class MemberValueOutputSerializer(serializers.ModelSerializer):
    """A member's customer value and churn risk as last refreshed (``insights``)."""

    monetary = MoneyField()
    churn_reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=MemberValue.ChurnReason.choices)
    )

    class Meta:
        model = MemberValue
        fields = [
            "as_of",
            "score",
            "contribution_score",
            "aum_score",
            "activity_score",
            "aum_trend",
            "recency_days",
            "frequency",
            "monetary",
            "churn_risk",
            "churn_reasons",
            "refreshed_at",
        ]
        read_only_fields = fields


class MemberDetailOutputSerializer(MemberOutputSerializer):
    """A member as staff see it; the phone is always masked; ``value`` is the customer value
    and churn risk as last refreshed (null until the first refresh)."""

    # The row, the tier with its history and the last twelve snapshots; the staff detail
    # view composes it with the sections other apps register (``members.api.sections``).

    snapshots = serializers.SerializerMethodField()
    tier = serializers.SerializerMethodField()
    tier_history = serializers.SerializerMethodField()
    value = serializers.SerializerMethodField()

    class Meta(MemberOutputSerializer.Meta):
        fields = [
            *MemberOutputSerializer.Meta.fields,
            "tier",
            "snapshots",
            "tier_history",
            "value",
        ]

    @extend_schema_field(MemberValueOutputSerializer(allow_null=True))
    def get_value(self, member) -> dict | None:
        value = member_value_get(member=member)
        return MemberValueOutputSerializer(value).data if value else None

    @extend_schema_field(SnapshotOutputSerializer(many=True))
    def get_snapshots(self, member) -> list[dict]:
        # ``.data`` of a many=True serializer is a ReturnList; the stubs say ReturnDict.
        return SnapshotOutputSerializer(member_snapshots(member=member), many=True).data  # type: ignore[return-value]

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
    # The signed-in member's profile (phone masked) and tier; ``/me/`` composes it with the
    # sections other apps register (``members.api.sections``).

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


class MessageOutputSerializer(serializers.ModelSerializer):
    read = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "kind", "title", "body", "data", "created_at", "read", "read_at"]

    def get_read(self, message) -> bool:
        return message.read_at is not None


class AssetSnapshotItemSerializer(BatchItemSerializer):
    """One asset snapshot: a member's holdings and contribution on one date."""

    # ``context["member_ids"]`` maps the batch's known customer numbers to member ids.

    customer_no = serializers.CharField(max_length=32, validators=[customer_no_validator])
    as_of = serializers.DateField(validators=[not_in_future])
    deposits = MoneyField(required=False, default=0, min_value=0)
    wealth = MoneyField(required=False, default=0, min_value=0)
    funds = MoneyField(required=False, default=0, min_value=0)
    insurance = MoneyField(required=False, default=0, min_value=0)
    loans = MoneyField(required=False, default=0, min_value=0)
    contribution = MoneyField(required=False, default=0)
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


def asset_snapshot_items_validate(
    items: list[Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(valid, rejected)`` for a batch's raw items: each item is judged alone, and an item
    repeating an earlier one's member and date is refused (``duplicate_in_batch``) rather
    than silently replacing it. ``rejected`` is ordered by index."""
    customer_nos = {
        item["customer_no"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("customer_no"), str)
    }
    valid, rejected = batch_validate(
        items,
        serializer_class=AssetSnapshotItemSerializer,
        context={"member_ids": member_ids_by_customer_no(customer_nos=customer_nos)},
    )
    first_index: dict[tuple, int] = {}
    unique = []
    for index, data in valid:
        key = (data["member_id"], data["as_of"])
        if key in first_index:
            rejected.append(
                {
                    "index": index,
                    "errors": [
                        {
                            "field": None,
                            "code": "duplicate_in_batch",
                            "detail": str(
                                _("Item %(index)s already holds this member and date.")
                                % {"index": first_index[key]}
                            ),
                        }
                    ],
                }
            )
            continue
        first_index[key] = index
        unique.append(data)
    rejected.sort(key=lambda row: row["index"])
    return unique, rejected
