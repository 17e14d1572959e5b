"""Points API: ingest, the member's points and ledger, the staff ledger, adjustments."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.batch import batch_items
from loyalty.api.idempotency import idempotent
from loyalty.api.pagination import CursorPagination
from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.errors import NotFound
from members.api.serializers import (
    MemberDetailOutputSerializer,
    MemberInputSerializer,
    MeOutputSerializer,
)
from members.api.views import MeApi, MemberDetailApi
from members.selectors import member_get
from points.filters import AdjustmentFilter, EntryFilter
from points.models import Adjustment, Entry, Transaction
from points.selectors import points_account_balance, points_balance_get, points_entries_list
from points.services.adjustments import adjustment_approve, adjustment_reject, adjustment_request
from points.services.ingest import transactions_store
from points.validation import transaction_items_validate


class EntryOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    expires_at = serializers.DateField(
        source="expires_on", read_only=True, allow_null=True, help_text=_("Last valid day.")
    )

    class Meta:
        model = Entry
        fields = [
            "id",
            "kind",
            "points",
            "balance_after",
            "description",
            "occurred_at",
            "expires_at",
        ]


class EntryCursorPagination(CursorPagination):
    ordering = "-id"


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())


@extend_schema(tags=["ingest"])
class TransactionIngestApi(APIView):
    """``{"transactions": [...]}`` (at most 1,000): valid items are stored in the inbox once per
    ``(source, external_id)`` and credited later by the consumer; invalid ones are listed under
    ``rejected`` with their reasons. A wrong envelope stores nothing."""

    permission_classes = [HasRolePermission]
    required_permissions = ("points.add_transaction",)

    @extend_schema_serializer(component_name="TransactionIngestInput")
    class InputSerializer(serializers.Serializer):
        transactions = serializers.ListField(child=serializers.DictField(), max_length=1000)

    @extend_schema(request=InputSerializer, responses={202: IngestResultSerializer})
    def post(self, request):
        items = batch_items(request.data, key="transactions")
        valid, rejected = transaction_items_validate(items)
        counts = transactions_store(
            transactions=[item for _, item in valid], via=Transaction.Via.API
        )
        return Response({**counts, "rejected": rejected}, status=status.HTTP_202_ACCEPTED)


class PointsSummaryOutputSerializer(serializers.Serializer):
    class ExpiringSerializer(serializers.Serializer):
        date = serializers.DateField()
        points = serializers.IntegerField()

    balance = serializers.IntegerField()
    pending = serializers.IntegerField()
    lifetime_earned = serializers.IntegerField()
    lifetime_redeemed = serializers.IntegerField()
    expiring = ExpiringSerializer(many=True)


@extend_schema(tags=["me"])
class MePointsApi(APIView):
    """My balance, points not yet credited, lifetime totals and what expires in 90 days."""

    permission_classes = [IsMember]

    @extend_schema(responses=PointsSummaryOutputSerializer)
    def get(self, request):
        balance = points_balance_get(member=request.user.member)
        return Response(PointsSummaryOutputSerializer(balance).data)


class MeWithPointsOutputSerializer(MeOutputSerializer):
    points_balance = serializers.SerializerMethodField()

    class Meta(MeOutputSerializer.Meta):
        fields = [*MeOutputSerializer.Meta.fields, "points_balance"]

    def get_points_balance(self, member) -> int:
        return points_account_balance(member=member)


@extend_schema(tags=["me"], responses=MeWithPointsOutputSerializer)
class MeWithPointsApi(MeApi):
    """The signed-in member's profile (phone masked), tier and points balance."""

    output_serializer_class = MeWithPointsOutputSerializer


class MemberDetailWithPointsOutputSerializer(MemberDetailOutputSerializer):
    points = serializers.SerializerMethodField()

    class Meta(MemberDetailOutputSerializer.Meta):
        fields = [*MemberDetailOutputSerializer.Meta.fields, "points"]

    @extend_schema_field(PointsSummaryOutputSerializer)
    def get_points(self, member) -> dict:
        return PointsSummaryOutputSerializer(points_balance_get(member=member)).data


@extend_schema(tags=["members"])
class MemberDetailWithPointsApi(MemberDetailApi):
    """Staff read one member (profile, tier and its history, points summary); the bank's CRM
    creates or updates one with ``PUT``."""

    output_serializer_class = MemberDetailWithPointsOutputSerializer

    @extend_schema(responses=MemberDetailWithPointsOutputSerializer)
    def get(self, request, customer_no: str):
        return super().get(request, customer_no)

    @extend_schema(
        request=MemberInputSerializer,
        responses={
            200: MemberDetailWithPointsOutputSerializer,
            201: MemberDetailWithPointsOutputSerializer,
        },
    )
    def put(self, request, customer_no: str):
        return super().put(request, customer_no)


_ENTRY_FILTERS = [
    OpenApiParameter("from", str, description="First business date (YYYY-MM-DD)"),
    OpenApiParameter("to", str, description="Last business date (YYYY-MM-DD)"),
]


@extend_schema(tags=["me"], parameters=_ENTRY_FILTERS)
class MePointsEntryListApi(generics.ListAPIView):
    """My ledger, newest first (cursor pagination); filters ``kind``, ``from``, ``to``."""

    permission_classes = [IsMember]
    queryset = Entry.objects.none()
    serializer_class = EntryOutputSerializer
    pagination_class = EntryCursorPagination
    filterset_class = EntryFilter
    ordering_fields: list[str] = []

    def get_queryset(self):
        return points_entries_list(member=self.request.user.member)


@extend_schema(tags=["points"], parameters=_ENTRY_FILTERS)
class MemberPointsEntryListApi(generics.ListAPIView):
    """Staff: one member's ledger, newest first (cursor pagination)."""

    permission_classes = [HasRolePermission]
    required_permissions = ("points.view_entry",)
    queryset = Entry.objects.none()
    serializer_class = EntryOutputSerializer
    pagination_class = EntryCursorPagination
    filterset_class = EntryFilter
    ordering_fields: list[str] = []

    def get_queryset(self):
        member = member_get(customer_no=self.kwargs["customer_no"])
        return points_entries_list(member=member)


class AdjustmentOutputSerializer(serializers.ModelSerializer):
    customer_no = serializers.CharField(source="member.customer_no")
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    entry_id = serializers.UUIDField(source="entry.public_id", allow_null=True, default=None)

    class Meta:
        model = Adjustment
        fields = [
            "id",
            "customer_no",
            "points",
            "reason",
            "status",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "entry_id",
            "created_at",
        ]


@extend_schema(tags=["points"])
class AdjustmentListCreateApi(generics.ListAPIView):
    """Staff: request a manual adjustment (201 ``pending``), or list them (filter ``status``)."""

    permission_classes = [HasRolePermission]
    required_permissions = {
        "GET": ("points.view_adjustment",),
        "POST": ("points.add_adjustment",),
    }
    serializer_class = AdjustmentOutputSerializer
    filterset_class = AdjustmentFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    @extend_schema_serializer(component_name="AdjustmentRequestInput")
    class InputSerializer(serializers.Serializer):
        customer_no = serializers.CharField(max_length=32)
        points = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
        reason = serializers.CharField(max_length=500)

        def validate_points(self, value: int) -> int:
            if value == 0:
                raise serializers.ValidationError(
                    _("An adjustment moves at least one point."), code="zero_points"
                )
            return value

    def get_queryset(self):
        return Adjustment.objects.select_related("member", "requested_by", "decided_by", "entry")

    @extend_schema(request=InputSerializer, responses={201: AdjustmentOutputSerializer})
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
        return Response(AdjustmentOutputSerializer(adjustment).data, status=status.HTTP_201_CREATED)


class _AdjustmentDecisionApi(APIView):
    permission_classes = [HasRolePermission]
    required_permissions = ("points.approve_adjustment",)
    service = staticmethod(adjustment_approve)

    @extend_schema_serializer(component_name="AdjustmentDecisionInput")
    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=AdjustmentOutputSerializer)
    @idempotent()
    def post(self, request, adjustment_id):
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        adjustment = Adjustment.objects.filter(pk=adjustment_id).first()
        if adjustment is None:
            raise NotFound()
        adjustment = self.service(
            adjustment=adjustment, actor=request.user, note=serializer.validated_data["note"]
        )
        return Response(AdjustmentOutputSerializer(adjustment).data)


@extend_schema(tags=["points"])
class AdjustmentApproveApi(_AdjustmentDecisionApi):
    """An approver other than the requester applies the adjustment (403
    ``four_eyes_required`` for the requester)."""

    service = staticmethod(adjustment_approve)


@extend_schema(tags=["points"])
class AdjustmentRejectApi(_AdjustmentDecisionApi):
    """An approver other than the requester rejects the adjustment."""

    service = staticmethod(adjustment_reject)
