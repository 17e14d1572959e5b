"""Points API: ingest, the member's points and ledger, the staff ledger, adjustments.

The balance on ``/me/`` and the points summary on the staff member detail are sections points
registers on members' views (``points.api.sections``), not views of its own.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.batch import BATCH_LIMIT, BatchRejectionSerializer, batch_items
from loyalty.api.idempotency import idempotent
from loyalty.api.pagination import CursorPagination
from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.api.schema import IDEMPOTENCY_KEY, nested_components, problems
from loyalty.api.serializers import StrictSerializer
from loyalty.errors import (
    BatchTooLarge,
    FourEyesRequired,
    IdempotencyConflict,
    IdempotencyKeyInvalid,
)
from members.api.serializers import CUSTOMER_NO_PATH, CustomerNoField
from members.errors import MemberInactive, MemberNotFound
from members.selectors import member_get
from points.api.serializers import (
    AdjustmentOutputSerializer,
    EntryOutputSerializer,
    PointsSummaryOutputSerializer,
)
from points.errors import AdjustmentDecided, InsufficientPoints
from points.filters import AdjustmentFilter, EntryFilter
from points.models import Entry, Transaction
from points.selectors import (
    adjustment_get,
    adjustment_list,
    points_balance_get,
    points_entries_list,
)
from points.services.adjustments import (
    ADJUSTMENT_LIMIT,
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
)
from points.services.ingest import transactions_store
from points.validation import TransactionItemSerializer, transaction_items_validate


class EntryCursorPagination(CursorPagination):
    # Newest business first; the id orders entries of the same moment.
    ordering = ("-occurred_at", "-id")  # type: ignore[assignment]  # DRF takes a sequence


@extend_schema(tags=["ingest"])
@nested_components
class TransactionIngestApi(APIView):
    """``{"transactions": [...]}`` (at most 1,000): valid items are stored in the inbox once per
    ``(source, external_id)`` and credited later by the consumer; invalid ones are listed under
    ``rejected`` with their reasons. A wrong envelope stores nothing."""

    permission_classes = [HasRolePermission]
    required_permissions = ("points.add_transaction",)

    class InputSerializer(serializers.Serializer):
        """The request body, for the schema: the view validates each item alone, so an item
        that does not match is not refused with the batch but listed under ``rejected``."""

        transactions = serializers.ListField(
            child=TransactionItemSerializer(), min_length=1, max_length=BATCH_LIMIT
        )

    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = BatchRejectionSerializer(many=True)

    @extend_schema(
        request=InputSerializer, responses={202: OutputSerializer, **problems(BatchTooLarge)}
    )
    def post(self, request):
        items = batch_items(request.data, key="transactions")
        valid, rejected = transaction_items_validate(items)
        counts = transactions_store(
            transactions=[item for _, item in valid], via=Transaction.Via.API
        )
        result = {**counts, "rejected": rejected}
        return Response(self.OutputSerializer(result).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["me"])
@nested_components
class MePointsApi(APIView):
    """My balance, points not yet credited, lifetime totals and what expires in 90 days."""

    permission_classes = [IsMember]
    OutputSerializer = PointsSummaryOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        balance = points_balance_get(member=request.user.member)
        return Response(self.OutputSerializer(balance).data)


_ENTRY_FILTERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First business date (YYYY-MM-DD)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last business date (YYYY-MM-DD)"),
]


@extend_schema(tags=["me"], parameters=_ENTRY_FILTERS)
@nested_components
class MePointsEntryListApi(generics.ListAPIView):
    """My ledger, newest first (cursor pagination); filters ``kind``, ``from``, ``to``."""

    permission_classes = [IsMember]
    OutputSerializer = EntryOutputSerializer
    serializer_class = OutputSerializer
    queryset = Entry.objects.none()  # the model, for the schema; rows come from the selector
    pagination_class = EntryCursorPagination
    filterset_class = EntryFilter
    ordering_fields: list[str] = []

    def get_queryset(self):
        return points_entries_list(member=self.request.user.member)


@extend_schema(tags=["points"], parameters=[CUSTOMER_NO_PATH, *_ENTRY_FILTERS])
@nested_components
class MemberPointsEntryListApi(generics.ListAPIView):
    """Staff: one member's ledger, newest first (cursor pagination)."""

    permission_classes = [HasRolePermission]
    required_permissions = ("points.view_entry",)
    OutputSerializer = EntryOutputSerializer
    serializer_class = OutputSerializer
    queryset = Entry.objects.none()  # the model, for the schema; rows come from the selector
    pagination_class = EntryCursorPagination
    filterset_class = EntryFilter
    ordering_fields: list[str] = []

    def get_queryset(self):
        member = member_get(customer_no=self.kwargs["customer_no"])
        return points_entries_list(member=member)


@extend_schema_field(
    {
        "type": "integer",
        "minimum": -ADJUSTMENT_LIMIT,
        "maximum": ADJUSTMENT_LIMIT,
        "not": {"enum": [0]},
        "description": "A credit (> 0) or a debit (< 0); never 0.",
    }
)
class AdjustmentPointsField(serializers.IntegerField):
    """Whole points within the limit, never 0 (``zero_points``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=-ADJUSTMENT_LIMIT, max_value=ADJUSTMENT_LIMIT, **kwargs)

    def to_internal_value(self, data) -> int:
        value = super().to_internal_value(data)
        if value == 0:
            raise serializers.ValidationError(
                _("An adjustment moves at least one point."), code="zero_points"
            )
        return value


@extend_schema(tags=["points"])
@nested_components
class AdjustmentListCreateApi(generics.ListAPIView):
    """Staff: request a manual adjustment (201 ``pending``), or list them (filter ``status``)."""

    permission_classes = [HasRolePermission]
    required_permissions = {
        "GET": ("points.view_adjustment",),
        "POST": ("points.add_adjustment",),
    }

    class InputSerializer(StrictSerializer):
        """``POST``: the adjustment requested."""

        customer_no = CustomerNoField()
        points = AdjustmentPointsField()
        reason = serializers.CharField(max_length=500)

    OutputSerializer = AdjustmentOutputSerializer
    serializer_class = OutputSerializer
    filterset_class = AdjustmentFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return adjustment_list()

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: OutputSerializer,
            **problems(
                IdempotencyKeyInvalid,
                MemberNotFound,
                MemberInactive,
                InsufficientPoints,
                IdempotencyConflict,
            ),
        },
    )
    @idempotent()
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        adjustment = adjustment_request(
            member=member_get(customer_no=data["customer_no"]),
            points=data["points"],
            reason=data["reason"],
            actor=request.user,
        )
        return Response(self.OutputSerializer(adjustment).data, status=status.HTTP_201_CREATED)


@nested_components
class _AdjustmentDecisionApi(APIView):
    """Approve and reject share their input and answer; each names its service."""

    permission_classes = [HasRolePermission]
    required_permissions = ("points.approve_adjustment",)
    service = staticmethod(adjustment_approve)

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    OutputSerializer = AdjustmentOutputSerializer

    @extend_schema(
        request=InputSerializer, parameters=[IDEMPOTENCY_KEY], responses=OutputSerializer
    )
    @idempotent()
    def post(self, request, adjustment_id):
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        adjustment = self.service(
            adjustment=adjustment_get(adjustment_id=adjustment_id),
            actor=request.user,
            note=serializer.validated_data["note"],
        )
        return Response(self.OutputSerializer(adjustment).data)


@extend_schema(tags=["points"])
@extend_schema_view(
    post=extend_schema(
        responses={
            200: AdjustmentOutputSerializer,
            **problems(
                IdempotencyKeyInvalid,
                FourEyesRequired,
                AdjustmentDecided,
                MemberInactive,
                IdempotencyConflict,
                InsufficientPoints,
            ),
        }
    )
)
class AdjustmentApproveApi(_AdjustmentDecisionApi):
    """An approver other than the requester applies the adjustment (403
    ``four_eyes_required`` for the requester)."""

    service = staticmethod(adjustment_approve)


@extend_schema(tags=["points"])
@extend_schema_view(
    post=extend_schema(
        responses={
            200: AdjustmentOutputSerializer,
            **problems(
                IdempotencyKeyInvalid, FourEyesRequired, AdjustmentDecided, IdempotencyConflict
            ),
        }
    )
)
class AdjustmentRejectApi(_AdjustmentDecisionApi):
    """An approver other than the requester rejects the adjustment."""

    service = staticmethod(adjustment_reject)
