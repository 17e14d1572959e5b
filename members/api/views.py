from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.batch import batch_items, batch_validate
from loyalty.api.idempotency import idempotent
from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.errors import NotFound
from members.api.serializers import (
    AssetSnapshotBatchSerializer,
    AssetSnapshotItemSerializer,
    BatchResultSerializer,
    MemberDetailOutputSerializer,
    MemberInputSerializer,
    MemberOutputSerializer,
    MemberTokenInputSerializer,
    MemberTokenOutputSerializer,
    MeOutputSerializer,
    MessageOutputSerializer,
)
from members.authentication import member_token_issue
from members.errors import MemberInactive
from members.filters import MemberFilter, MessageFilter
from members.models import Member, Message, customer_no_validator
from members.selectors import member_get, member_list, member_messages
from members.services import asset_snapshots_store, member_upsert, messages_mark_read


@extend_schema(tags=["members"])
class MemberListApi(generics.ListAPIView):
    """Staff: members with filters (``status``, ``aum_min``, ``aum_max``, ``joined_from``,
    ``joined_to``, ``city``, ``branch_code``) and ``search``."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.view_member",)
    serializer_class = MemberOutputSerializer
    filterset_class = MemberFilter
    ordering_fields = ["customer_no", "joined_at", "name", "latest_aum"]
    ordering = ["customer_no"]

    def get_queryset(self):
        return member_list()


@extend_schema(tags=["members"])
class MemberDetailApi(APIView):
    """Staff read one member; the bank's CRM creates or updates one with ``PUT``."""

    permission_classes = [HasRolePermission]
    required_permissions = {
        "GET": ("members.view_member",),
        "PUT": ("members.add_member", "members.change_member"),
    }
    # Apps built on members (points) serve this view with a richer output.
    output_serializer_class = MemberDetailOutputSerializer

    @extend_schema(responses=MemberDetailOutputSerializer)
    def get(self, request, customer_no: str):
        member = member_get(customer_no=customer_no)
        return Response(self.output_serializer_class(member).data)

    @extend_schema(
        request=MemberInputSerializer,
        responses={200: MemberDetailOutputSerializer, 201: MemberDetailOutputSerializer},
    )
    def put(self, request, customer_no: str):
        try:
            customer_no_validator(customer_no)
        except DjangoValidationError:
            raise serializers.ValidationError(
                {
                    "customer_no": [
                        serializers.ErrorDetail(
                            str(_("A customer number is 1 to 32 letters, digits, '-' or '_'.")),
                            code="invalid_customer_no",
                        )
                    ]
                }
            ) from None
        creating = not Member.objects.filter(customer_no=customer_no).exists()
        serializer = MemberInputSerializer(data=request.data, context={"creating": creating})
        serializer.is_valid(raise_exception=True)
        _member, created = member_upsert(
            customer_no=customer_no, actor=request.user, **serializer.validated_data
        )
        body = self.output_serializer_class(member_get(customer_no=customer_no)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["me"], responses=MeOutputSerializer)
class MeApi(APIView):
    """The signed-in member's profile (phone masked)."""

    permission_classes = [IsMember]
    output_serializer_class = MeOutputSerializer

    def get(self, request):
        return Response(self.output_serializer_class(request.user.member).data)


@extend_schema(
    tags=["auth"], request=MemberTokenInputSerializer, responses=MemberTokenOutputSerializer
)
class MemberTokenApi(APIView):
    """The banking gateway exchanges an authenticated customer session for a member token."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.issue_member_token",)

    def post(self, request):
        serializer = MemberTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member = member_get(customer_no=serializer.validated_data["customer_no"])
        if member.status == Member.Status.CLOSED:
            raise MemberInactive()
        refresh = member_token_issue(member=member)
        return Response(
            {
                "access": str(refresh.access_token),
                "refresh": str(refresh),
                "customer_no": member.customer_no,
            }
        )


@extend_schema(
    tags=["ingest"], request=AssetSnapshotBatchSerializer, responses={202: BatchResultSerializer}
)
class AssetSnapshotIngestApi(APIView):
    """``{"snapshots": [...]}`` (at most 1,000): valid items are stored (a re-sent one replaces
    its date's values), invalid ones are listed under ``rejected`` with their reasons."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.add_assetsnapshot",)

    @idempotent()
    def post(self, request):
        items = batch_items(request.data, key="snapshots")
        customer_nos = {
            item["customer_no"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("customer_no"), str)
        }
        member_ids = dict(
            Member.objects.filter(customer_no__in=customer_nos).values_list("customer_no", "id")
        )
        valid, rejected = batch_validate(
            items, serializer_class=AssetSnapshotItemSerializer, context={"member_ids": member_ids}
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
        counts = asset_snapshots_store(snapshots=unique)
        rejected.sort(key=lambda row: row["index"])
        return Response(
            {
                "accepted": counts["created"] + counts["updated"],
                "duplicates": counts["unchanged"],
                "created": counts["created"],
                "updated": counts["updated"],
                "rejected": rejected,
            },
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(tags=["me"])
class MeMessageListApi(generics.ListAPIView):
    """The signed-in member's messages, newest first; ``?unread=true`` for unread only."""

    permission_classes = [IsMember]
    serializer_class = MessageOutputSerializer
    filterset_class = MessageFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        return member_messages(member=self.request.user.member)


@extend_schema(tags=["me"], request=None, responses=MessageOutputSerializer)
class MeMessageReadApi(APIView):
    """Mark one of my messages read (another member's message answers 404)."""

    permission_classes = [IsMember]

    def post(self, request, message_id):
        member = request.user.member
        messages_mark_read(member=member, message_ids=[message_id])
        message = member_messages(member=member).filter(id=message_id).first()
        if message is None:
            raise NotFound()
        return Response(MessageOutputSerializer(message).data)
