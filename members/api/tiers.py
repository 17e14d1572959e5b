"""Tiers over HTTP: the ladder, evaluation runs, the simulator, overrides and ``/me/tier/``.

Each view parses its input with a nested ``InputSerializer``, calls one service or selector and
answers with its ``OutputSerializer``; evaluation dates are never in the future nor before the
first date evaluations know (``EARLIEST_AS_OF``).
"""

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.api.schema import nested_components, problems
from loyalty.api.serializers import MoneyField, StrictSerializer, not_in_future
from loyalty.errors import FourEyesRequired
from members.api.serializers import (
    BenefitOutputSerializer,
    CustomerNoField,
    MultiplierField,
    TierRefSerializer,
)
from members.errors import (
    EvaluationRunning,
    MemberClosed,
    MemberNotFound,
    NoActiveTiers,
    TierOverrideExpired,
    TierOverrideNotPending,
    TierOverridePending,
)
from members.filters import TierOverrideFilter
from members.models import EARLIEST_AS_OF, Tier, TierEvaluationRun, TierOverride
from members.selectors import (
    member_get,
    member_tier_standing,
    tier_evaluation_run_get,
    tier_evaluation_run_list,
    tier_get,
    tier_list,
    tier_override_get,
    tier_override_list,
)
from members.services.evaluation import tier_evaluation_start
from members.services.overrides import (
    tier_override_approve,
    tier_override_reject,
    tier_override_request,
)
from members.services.simulation import tiers_simulate

OVERRIDE_MAX_DAYS = 366


def not_before_earliest_as_of(value: dt.date | None) -> None:
    """Field validator: evaluations know no date before ``EARLIEST_AS_OF``."""
    if value is not None and value < EARLIEST_AS_OF:
        raise serializers.ValidationError(
            _("Evaluation dates start on %(date)s.") % {"date": EARLIEST_AS_OF.isoformat()},
            code="too_early",
        )


EVALUATION_DATE_VALIDATORS = [not_in_future, not_before_earliest_as_of]


class RunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TierEvaluationRun
        fields = [
            "run_id",
            "as_of",
            "status",
            "trigger",
            "total",
            "processed",
            "upgraded",
            "downgraded",
            "unchanged",
            "created_at",
            "started_at",
            "finished_at",
            "error",
        ]


class OverrideOutputSerializer(serializers.ModelSerializer):
    customer_no = serializers.CharField(source="member.customer_no")
    tier = TierRefSerializer()
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)

    class Meta:
        model = TierOverride
        fields = [
            "id",
            "customer_no",
            "tier",
            "reason",
            "expires_at",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ]


@extend_schema(tags=["tiers"])
@nested_components
class TierListApi(generics.ListAPIView):
    """The active tiers, lowest rank first, with their benefits; for any authenticated caller
    (members included)."""

    class OutputSerializer(serializers.ModelSerializer):
        name = serializers.CharField(read_only=True)
        min_avg_aum = MoneyField(allow_null=True, read_only=True)
        min_contribution = MoneyField(allow_null=True, read_only=True)
        currency = serializers.SerializerMethodField()
        benefits = BenefitOutputSerializer(many=True, read_only=True)

        class Meta:
            model = Tier
            fields = [
                "code",
                "name",
                "rank",
                "min_avg_aum",
                "min_contribution",
                "currency",
                "rule",
                "window_months",
                "multiplier",
                "grace_periods",
                "downgrade_mode",
                "benefits",
            ]

        def get_currency(self, tier) -> str:
            return "CNY"

    serializer_class = OutputSerializer
    filter_backends: list = []

    def get_queryset(self):
        return tier_list()


@extend_schema(tags=["tiers"])
@nested_components
class TierEvaluateApi(APIView):
    """Start an evaluation run as of ``as_of`` (default: the end of the previous month).
    Answers 202 with the ``run_id``; while another run is queued or running, 409
    ``evaluation_running`` with that run's ``run_id``."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.add_tierevaluationrun",)

    class InputSerializer(StrictSerializer):
        as_of = serializers.DateField(required=False, validators=EVALUATION_DATE_VALIDATORS)

    class OutputSerializer(serializers.Serializer):
        run_id = serializers.UUIDField()
        status = serializers.CharField()
        as_of = serializers.DateField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer, **problems(EvaluationRunning, NoActiveTiers)},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = tier_evaluation_start(
            actor=request.user, as_of=serializer.validated_data.get("as_of")
        )
        return Response(self.OutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["tiers"])
@nested_components
class TierEvaluationRunListApi(generics.ListAPIView):
    """Evaluation runs, newest first."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.view_tierevaluationrun",)
    OutputSerializer = RunOutputSerializer
    serializer_class = OutputSerializer
    filter_backends: list = []

    def get_queryset(self):
        return tier_evaluation_run_list()


@extend_schema(tags=["tiers"])
@nested_components
class TierEvaluationRunDetailApi(APIView):
    """One run's status and progress."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.view_tierevaluationrun",)
    OutputSerializer = RunOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request, run_id):
        return Response(self.OutputSerializer(tier_evaluation_run_get(run_id=run_id)).data)


class TierProposalSerializer(StrictSerializer):
    """Proposed values for one tier of the simulation, named by its ``code``; a value left out
    keeps the tier's own."""

    code = serializers.CharField(max_length=32)
    min_avg_aum = MoneyField(required=False, allow_null=True, min_value=0)
    min_contribution = MoneyField(required=False, allow_null=True, min_value=0)
    rule = serializers.ChoiceField(choices=Tier.Rule.choices, required=False)
    window_months = serializers.IntegerField(required=False, min_value=1, max_value=24)
    grace_periods = serializers.IntegerField(required=False, min_value=1, max_value=24)
    downgrade_mode = serializers.ChoiceField(choices=Tier.DowngradeMode.choices, required=False)

    def validate_code(self, value):
        if tier_get(code=value) is None:
            raise serializers.ValidationError(_("No tier with this code."), code="unknown_tier")
        return value


@extend_schema_field(TierProposalSerializer(many=True))
class TierProposalListField(serializers.ListField):
    """The simulator's ``tiers``: a list the input validates item by item (errors keyed by
    index), described in the schema as a list of :class:`TierProposalSerializer`."""


@extend_schema(tags=["tiers"])
@nested_components
class TierSimulateApi(APIView):
    """If these thresholds were published, how many members would land in each tier and how
    many would move up, down or stay, by the evaluation's own rules. Changes nothing."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.change_tier",)

    class InputSerializer(StrictSerializer):
        as_of = serializers.DateField(required=False, validators=EVALUATION_DATE_VALIDATORS)
        tiers = TierProposalListField(required=False, max_length=50, default=list)

        def validate_tiers(self, value):
            proposals, errors, seen = [], {}, set()
            for index, item in enumerate(value):
                serializer = TierProposalSerializer(data=item)
                if not serializer.is_valid():
                    errors[index] = serializer.errors
                    continue
                code = serializer.validated_data["code"]
                if code in seen:
                    errors[index] = {
                        "code": [
                            serializers.ErrorDetail(
                                _("This tier is proposed twice."), code="duplicate"
                            )
                        ]
                    }
                seen.add(code)
                proposals.append(serializer.validated_data)
            if errors:
                raise serializers.ValidationError(errors)
            return proposals

    class OutputSerializer(serializers.Serializer):
        class TierCountSerializer(serializers.Serializer):
            code = serializers.CharField()
            name = serializers.CharField()
            rank = serializers.IntegerField()
            min_avg_aum = MoneyField(allow_null=True)
            min_contribution = MoneyField(allow_null=True)
            rule = serializers.CharField()
            members = serializers.IntegerField()
            qualified = serializers.IntegerField()

        as_of = serializers.DateField()
        members = serializers.IntegerField()
        tiers = TierCountSerializer(many=True)
        moves = inline_serializer(
            "SimulationMoves",
            {
                "up": serializers.IntegerField(),
                "down": serializers.IntegerField(),
                "same": serializers.IntegerField(),
            },
        )

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, **problems(NoActiveTiers)}
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        proposals = {
            item.pop("code"): item for item in map(dict, serializer.validated_data["tiers"])
        }
        result = tiers_simulate(as_of=serializer.validated_data.get("as_of"), proposals=proposals)
        return Response(self.OutputSerializer(result).data)


@extend_schema(tags=["me"])
@nested_components
class MeTierApi(APIView):
    """My tier, since when, its multiplier and benefits, what it takes to reach the next tier
    and, while my assets are below my tier's thresholds, how many evaluations are left."""

    permission_classes = [IsMember]

    class OutputSerializer(serializers.Serializer):
        class NextTierSerializer(serializers.Serializer):
            code = serializers.CharField()
            name = serializers.CharField()
            rule = serializers.CharField()
            aum_gap = MoneyField(allow_null=True)
            contribution_gap = MoneyField(allow_null=True)
            as_of = serializers.DateField(allow_null=True)

        class WarningSerializer(serializers.Serializer):
            qualified_tier = TierRefSerializer(allow_null=True)
            failing_evaluations = serializers.IntegerField()
            grace_periods = serializers.IntegerField()
            evaluations_left = serializers.IntegerField()
            as_of = serializers.DateField(allow_null=True)
            detail = serializers.CharField()

        tier = TierRefSerializer(allow_null=True)
        since = serializers.DateField(allow_null=True)
        multiplier = MultiplierField()
        benefits = BenefitOutputSerializer(many=True)
        next_tier = NextTierSerializer(allow_null=True)
        downgrade_warning = WarningSerializer(allow_null=True)
        override_until = serializers.DateTimeField(allow_null=True)
        currency = serializers.CharField(default="CNY")

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        standing = member_tier_standing(member=request.user.member)
        return Response(self.OutputSerializer(standing).data)


@extend_schema(tags=["tiers"])
@nested_components
class TierOverrideListCreateApi(generics.ListAPIView):
    """Tier overrides (``?status=``, ``?customer_no=``); ``POST`` requests one for a member,
    which takes effect only when a different person with the approver role approves it."""

    permission_classes = [HasRolePermission]
    required_permissions = {
        "GET": ("members.view_tieroverride",),
        "POST": ("members.add_tieroverride",),
    }

    class InputSerializer(StrictSerializer):
        # ``POST``: the override requested.
        customer_no = CustomerNoField()
        tier = serializers.CharField(max_length=32)
        reason = serializers.CharField(max_length=2000)
        expires_at = serializers.DateTimeField()

        def validate_tier(self, value):
            tier = tier_get(code=value)
            if tier is None or not tier.active:
                raise serializers.ValidationError(
                    _("No active tier with this code."), "unknown_tier"
                )
            return tier

        def validate_expires_at(self, value):
            now = timezone.now()
            if value <= now:
                raise serializers.ValidationError(_("This time has passed."), code="past")
            if value > now + dt.timedelta(days=OVERRIDE_MAX_DAYS):
                raise serializers.ValidationError(
                    _("An override lasts at most a year."), code="too_long"
                )
            return value

    OutputSerializer = OverrideOutputSerializer
    serializer_class = OutputSerializer
    filterset_class = TierOverrideFilter
    ordering_fields = ["requested_at", "expires_at"]

    def get_queryset(self):
        return tier_override_list()

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **problems(MemberNotFound, MemberClosed, TierOverridePending),
        },
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        override = tier_override_request(
            member=member_get(customer_no=data["customer_no"]),
            tier=data["tier"],
            reason=data["reason"],
            expires_at=data["expires_at"],
            actor=request.user,
        )
        body = self.OutputSerializer(tier_override_get(override_id=override.id)).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tiers"])
@nested_components
class TierOverrideDetailApi(APIView):
    permission_classes = [HasRolePermission]
    required_permissions = ("members.view_tieroverride",)
    OutputSerializer = OverrideOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request, override_id):
        return Response(self.OutputSerializer(tier_override_get(override_id=override_id)).data)


@nested_components
class _OverrideDecisionApi(APIView):
    """Approve and reject share their input and answer; each names its service."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.approve_tieroverride",)
    service = staticmethod(tier_override_approve)

    class InputSerializer(StrictSerializer):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    OutputSerializer = OverrideOutputSerializer

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, override_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        override = self.service(
            override_id=override_id,
            actor=request.user,
            note=serializer.validated_data.get("note", ""),
        )
        return Response(self.OutputSerializer(tier_override_get(override_id=override.id)).data)


@extend_schema(tags=["tiers"])
@extend_schema_view(
    post=extend_schema(
        responses={
            200: OverrideOutputSerializer,
            **problems(FourEyesRequired, TierOverrideNotPending, TierOverrideExpired, MemberClosed),
        }
    )
)
class TierOverrideApproveApi(_OverrideDecisionApi):
    """Approve a pending override: the member holds its tier at once and until it expires.
    The requester cannot approve their own request (403 ``four_eyes_required``)."""

    service = staticmethod(tier_override_approve)


@extend_schema(tags=["tiers"])
@extend_schema_view(
    post=extend_schema(
        responses={
            200: OverrideOutputSerializer,
            **problems(FourEyesRequired, TierOverrideNotPending),
        }
    )
)
class TierOverrideRejectApi(_OverrideDecisionApi):
    """Reject a pending override (by someone other than the requester)."""

    service = staticmethod(tier_override_reject)
