"""Rewards API: the catalogue (members read it with their eligibility, staff manage it), coupon
code pools, a member's redemptions, and fulfilment by staff."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.idempotency import idempotent
from loyalty.api.permissions import (
    HasRolePermission,
    IsMember,
    IsMemberReadOrStaffWithRole,
    is_member,
)
from loyalty.api.schema import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_REQUIRED,
    nested_components,
    problems,
)
from loyalty.api.serializers import MoneyField, StrictSerializer
from loyalty.errors import IdempotencyConflict, IdempotencyKeyInvalid, IdempotencyKeyRequired
from members.errors import MemberInactive
from points.errors import InsufficientPoints
from rewards.api.serializers import RedemptionOutputSerializer, RewardOutputSerializer
from rewards.errors import (
    BudgetExhausted,
    CashNotDue,
    CashPaid,
    CashUnpaid,
    LimitExceeded,
    NotEligible,
    OutOfStock,
    RedemptionClosed,
    RedemptionNotFound,
    RewardNotFound,
)
from rewards.filters import RedemptionFilter, RewardFilter
from rewards.models import Category, LimitPeriod, Redemption, Reward
from rewards.selectors import (
    member_redemptions,
    redemption_get,
    redemption_list,
    reward_get,
    reward_list,
    rewards_for_member,
)
from rewards.services.catalogue import reward_create, reward_update
from rewards.services.codes import (
    CODES_PER_UPLOAD,
    DEFAULT_ALPHABET,
    code_validate,
    codes_add,
    codes_from_csv,
    codes_generate,
)
from rewards.services.redemptions import (
    MAX_QUANTITY,
    redemption_cancel,
    redemption_cash_paid,
    redemption_create,
    redemption_fulfil,
)


def _rewards_for(request):
    """What the caller's catalogue holds: for a member, the active rewards that have not ended,
    with their eligibility; for staff, every reward."""
    if is_member(request.user):
        return rewards_for_member(member=request.user.member, include_ended=False)
    return reward_list()


class RewardInputSerializer(StrictSerializer):
    """A reward as staff write it (``PATCH``: any subset). ``name`` and ``description`` are the
    English texts; ``*_zh_hans`` the Simplified Chinese ones."""

    code = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100, source="name_en")
    name_zh_hans = serializers.CharField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, source="description_en")
    description_zh_hans = serializers.CharField(required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices)
    points_price = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    cash_price = MoneyField(required=False, min_value=0)
    stock = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True
    )
    eligible_tiers = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=50
    )
    limit_per_member = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True
    )
    limit_period = serializers.ChoiceField(choices=LimitPeriod.choices, required=False)
    valid_from = serializers.DateTimeField(required=False, allow_null=True)
    valid_to = serializers.DateTimeField(required=False, allow_null=True)
    monthly_points_budget = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, allow_null=True
    )
    low_codes_threshold = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    position = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    active = serializers.BooleanField(required=False)
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, write_only=True, default=""
    )


@extend_schema(tags=["rewards"])
@nested_components
class RewardListCreateApi(generics.ListAPIView):
    """The catalogue. A member sees the active rewards with ``eligible`` and
    ``ineligible_reason`` for them (filters ``category``, ``max_points``, ``eligible``); staff
    with the rewards role see every reward and create them (``POST``)."""

    permission_classes = [IsMemberReadOrStaffWithRole]
    required_permissions = {"GET": ("rewards.view_reward",), "POST": ("rewards.add_reward",)}
    InputSerializer = RewardInputSerializer
    OutputSerializer = RewardOutputSerializer
    serializer_class = OutputSerializer
    queryset = Reward.objects.none()  # the model, for the schema; rows come from the selectors
    filterset_class = RewardFilter
    ordering_fields = ["points_price", "created_at", "position"]
    ordering = ["position", "points_price", "code"]

    def get_queryset(self):
        return _rewards_for(self.request)

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        fields.pop("reason", None)
        reward = reward_create(actor=request.user, fields=fields)
        return Response(
            self.OutputSerializer(reward, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["rewards"])
@nested_components
class RewardDetailApi(APIView):
    """One reward: for a member with their eligibility (an inactive or ended reward is not
    found); staff change it with ``PATCH`` (only the fields sent; a stock change is audited on
    its own, with ``reason``)."""

    permission_classes = [IsMemberReadOrStaffWithRole]
    required_permissions = {"GET": ("rewards.view_reward",), "PATCH": ("rewards.change_reward",)}
    InputSerializer = RewardInputSerializer
    OutputSerializer = RewardOutputSerializer

    @extend_schema(responses={200: OutputSerializer, **problems(RewardNotFound)})
    def get(self, request, reward_id):
        reward = _rewards_for(request).filter(pk=reward_id).first()
        if reward is None:
            raise RewardNotFound()
        return Response(self.OutputSerializer(reward, context={"request": request}).data)

    class PatchSerializer(RewardInputSerializer):
        """Any of a reward's fields but its ``code``, which never changes (redemptions, the
        admin and the demo name a reward by it)."""

        code = None  # type: ignore[assignment]

    @extend_schema(
        request=PatchSerializer(partial=True),
        responses={200: OutputSerializer, **problems(RewardNotFound)},
    )
    def patch(self, request, reward_id):
        reward = reward_get(reward_id=reward_id)
        serializer = self.PatchSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason", "")
        reward = reward_update(reward=reward, actor=request.user, changes=changes, reason=reason)
        return Response(self.OutputSerializer(reward, context={"request": request}).data)


class CouponCodeField(serializers.CharField):
    """A coupon code as the pool stores it (``rewards.services.codes.code_validate``)."""

    def to_internal_value(self, data):
        try:
            return code_validate(super().to_internal_value(data))
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error


class CodePatternSerializer(StrictSerializer):
    """Codes drawn at random: ``count`` of ``prefix`` + ``length`` characters of ``alphabet``."""

    count = serializers.IntegerField(min_value=1, max_value=CODES_PER_UPLOAD)
    prefix = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    length = serializers.IntegerField(min_value=4, max_value=32, required=False, default=10)
    alphabet = serializers.CharField(
        min_length=2, max_length=64, required=False, default=DEFAULT_ALPHABET
    )
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)


@extend_schema(tags=["rewards"])
@nested_components
class RewardCodesAddApi(APIView):
    """Add coupon codes to a coupon or voucher reward's pool: ``{codes: [...], expires_on}``,
    ``{generate: {count, prefix, length, alphabet, expires_on}}``, or ``{csv: "..."}`` (a CSV
    file's text: a ``code`` column and an optional ``expires_on``). Answers how many were added
    and how many were already in the pool (or repeated); a bad line refuses the whole upload."""

    permission_classes = [HasRolePermission]
    required_permissions = ("rewards.add_couponcode",)

    class InputSerializer(StrictSerializer):
        codes = serializers.ListField(
            child=CouponCodeField(max_length=64),
            required=False,
            min_length=1,
            max_length=CODES_PER_UPLOAD,
        )
        expires_on = serializers.DateField(required=False, allow_null=True, default=None)
        generate = CodePatternSerializer(required=False)
        csv = serializers.CharField(
            required=False, max_length=CODES_PER_UPLOAD * 100, trim_whitespace=False
        )

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if sum(name in attrs for name in ("codes", "generate", "csv")) != 1:
                raise serializers.ValidationError(
                    {"codes": [_("Send one of codes, generate or csv.")]}
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        added = serializers.IntegerField()
        duplicates = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, **problems(RewardNotFound)},
    )
    def post(self, request, reward_id):
        reward = reward_get(reward_id=reward_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "csv" in data:
            rows = codes_from_csv(data["csv"])
            result = codes_add(reward=reward, codes=rows, actor=request.user, via="csv")
        elif "generate" in data:
            result = codes_generate(reward=reward, actor=request.user, **data["generate"])
        else:
            rows = [(code, data["expires_on"]) for code in data["codes"]]
            result = codes_add(reward=reward, codes=rows, actor=request.user)
        return Response(self.OutputSerializer(result).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["me"])
@nested_components
class MeRedemptionListCreateApi(generics.ListAPIView):
    """My redemptions, newest first (filter ``status``); ``POST`` redeems a reward (an
    ``Idempotency-Key`` is required: a retry returns the first answer and debits once)."""

    permission_classes = [IsMember]
    OutputSerializer = RedemptionOutputSerializer
    serializer_class = OutputSerializer
    queryset = Redemption.objects.none()  # the model, for the schema; rows: the selectors
    filterset_class = RedemptionFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    class InputSerializer(StrictSerializer):
        reward_id = serializers.UUIDField()
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

    def get_queryset(self):
        return member_redemptions(member=self.request.user.member)

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY_REQUIRED],
        responses={
            201: OutputSerializer,
            **problems(
                IdempotencyKeyRequired,
                IdempotencyKeyInvalid,
                NotEligible,
                RewardNotFound,
                OutOfStock,
                BudgetExhausted,
                MemberInactive,
                IdempotencyConflict,
                InsufficientPoints,
                LimitExceeded,
            ),
        },
    )
    @idempotent(required=True)
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        redemption = redemption_create(
            member=request.user.member, reward_id=data["reward_id"], quantity=data["quantity"]
        )
        return Response(self.OutputSerializer(redemption).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["me"])
@nested_components
class MeRedemptionDetailApi(APIView):
    """One of my redemptions (another member's answers 404)."""

    permission_classes = [IsMember]
    OutputSerializer = RedemptionOutputSerializer

    @extend_schema(responses={200: OutputSerializer, **problems(RedemptionNotFound)})
    def get(self, request, redemption_id):
        redemption = redemption_get(redemption_id=redemption_id, member=request.user.member)
        return Response(self.OutputSerializer(redemption).data)


@extend_schema(tags=["me"])
@nested_components
class MeRedemptionCancelApi(APIView):
    """Cancel my pending redemption: points back, with their original expiry; its coupon codes
    are void. Cancelling a cancelled one answers the same; a fulfilled one is 409
    ``redemption_closed``, one whose co-payment is paid 409 ``cash_paid``."""

    permission_classes = [IsMember]
    OutputSerializer = RedemptionOutputSerializer

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: OutputSerializer,
            **problems(
                IdempotencyKeyInvalid,
                RedemptionNotFound,
                RedemptionClosed,
                CashPaid,
                MemberInactive,
                IdempotencyConflict,
            ),
        },
    )
    @idempotent()
    def post(self, request, redemption_id):
        redemption = redemption_get(redemption_id=redemption_id, member=request.user.member)
        return Response(self.OutputSerializer(redemption_cancel(redemption=redemption)).data)


@extend_schema(tags=["rewards"])
@nested_components
class RedemptionListApi(generics.ListAPIView):
    """Staff: every redemption, newest first; filters ``status``, ``reward_id``,
    ``customer_no``."""

    permission_classes = [HasRolePermission]
    required_permissions = ("rewards.view_redemption",)
    OutputSerializer = RedemptionOutputSerializer
    serializer_class = OutputSerializer
    queryset = Redemption.objects.none()  # the model, for the schema; rows: the selectors
    filterset_class = RedemptionFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return redemption_list()


class _NoteSerializer(StrictSerializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


@extend_schema(tags=["rewards"])
@nested_components
class RedemptionFulfilApi(APIView):
    """Staff: the reward was handed over (a cash co-payment must be paid first)."""

    permission_classes = [HasRolePermission]
    required_permissions = ("rewards.fulfil_redemption",)
    InputSerializer = _NoteSerializer
    OutputSerializer = RedemptionOutputSerializer

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: OutputSerializer,
            **problems(
                IdempotencyKeyInvalid,
                RedemptionNotFound,
                RedemptionClosed,
                CashUnpaid,
                IdempotencyConflict,
            ),
        },
    )
    @idempotent()
    def post(self, request, redemption_id):
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        redemption = redemption_fulfil(
            redemption=redemption_get(redemption_id=redemption_id),
            actor=request.user,
            note=serializer.validated_data["note"],
        )
        return Response(self.OutputSerializer(redemption).data)


@extend_schema(tags=["rewards"])
@nested_components
class RedemptionCancelApi(APIView):
    """Staff: cancel a redemption before it is fulfilled; points and stock go back, its codes
    are void (a paid co-payment is recorded as to be paid back in the audit log)."""

    permission_classes = [HasRolePermission]
    required_permissions = ("rewards.cancel_redemption",)

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=500)

    OutputSerializer = RedemptionOutputSerializer

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: OutputSerializer,
            **problems(
                IdempotencyKeyInvalid,
                RedemptionNotFound,
                RedemptionClosed,
                MemberInactive,
                IdempotencyConflict,
            ),
        },
    )
    @idempotent()
    def post(self, request, redemption_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redemption = redemption_cancel(
            redemption=redemption_get(redemption_id=redemption_id),
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(self.OutputSerializer(redemption).data)


@extend_schema(tags=["rewards"])
@nested_components
class RedemptionCashPaymentApi(APIView):
    """Integration: the bank collected the redemption's cash co-payment (``reference``: the
    payment's id in core banking). Reported again with the same reference, nothing changes."""

    permission_classes = [HasRolePermission]
    required_permissions = ("rewards.record_cash_payment",)

    class InputSerializer(StrictSerializer):
        reference = serializers.CharField(max_length=64)

    OutputSerializer = RedemptionOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **problems(RedemptionNotFound, RedemptionClosed, CashNotDue),
        },
    )
    def post(self, request, redemption_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redemption = redemption_cash_paid(
            redemption=redemption_get(redemption_id=redemption_id),
            actor=request.user,
            reference=serializer.validated_data["reference"],
        )
        return Response(self.OutputSerializer(redemption).data)
