"""Members over HTTP: the staff list and detail, ``/me/``, the member-token exchange, asset
snapshot ingest and the member's messages.

``/me/`` and ``/members/{customer_no}/`` answer with members' own fields followed by the
sections other apps register (``members.api.sections``); members never imports those apps.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.batch import BATCH_LIMIT, BatchRejectionSerializer, batch_items
from loyalty.api.idempotency import idempotent
from loyalty.api.parsers import request_body
from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.api.schema import IDEMPOTENCY_KEY, nested_components, problems
from loyalty.api.serializers import StrictSerializer, not_in_future
from loyalty.errors import BatchTooLarge, IdempotencyConflict, IdempotencyKeyInvalid
from members.api.sections import me_sections, member_detail_sections
from members.api.serializers import (
    CUSTOMER_NO_PATH,
    AssetSnapshotItemSerializer,
    CustomerNoField,
    MemberDetailOutputSerializer,
    MemberOutputSerializer,
    MeOutputSerializer,
    MessageOutputSerializer,
    asset_snapshot_items_validate,
)
from members.authentication import member_token_issue
from members.errors import MemberClosed, MemberInactive, MemberNotFound
from members.filters import MemberFilter, MessageFilter
from members.models import Member, Message, customer_no_validator, phone_validator
from members.selectors import (
    member_exists,
    member_get,
    member_list,
    member_message_get,
    member_messages,
)
from members.services.members import member_upsert
from members.services.messages import messages_mark_read
from members.services.snapshots import asset_snapshots_store


@extend_schema(tags=["members"])
@nested_components
class MemberListApi(generics.ListAPIView):
    """Staff: members with filters (``status``, ``tier``, ``segment``, ``aum_min``, ``aum_max``,
    ``joined_from``, ``joined_to``, ``city``, ``branch_code``) and ``search``."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.view_member",)
    OutputSerializer = MemberOutputSerializer
    serializer_class = OutputSerializer
    filterset_class = MemberFilter
    ordering_fields = ["customer_no", "joined_at", "name", "latest_aum"]
    ordering = ["customer_no"]

    def get_queryset(self):
        return member_list()


def _customer_no_from_path(customer_no: str) -> str:
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
    return customer_no


@extend_schema(tags=["members"], parameters=[CUSTOMER_NO_PATH])
@nested_components
class MemberDetailApi(APIView):
    """Staff read one member (profile, tier and its history, points summary); the bank's CRM
    creates or updates one with ``PUT``."""

    # The docstring is the schema's description: it names what the registered sections add.

    permission_classes = [HasRolePermission]
    required_permissions = {
        "GET": ("members.view_member",),
        "PUT": ("members.add_member", "members.change_member"),
    }

    class InputSerializer(StrictSerializer):
        """``PUT /api/v1/members/{customer_no}/``: only ``name`` is required on create."""

        name = serializers.CharField(max_length=100, required=False)
        gender = serializers.ChoiceField(choices=Member.Gender.choices, required=False)
        birth_date = serializers.DateField(
            required=False, allow_null=True, validators=[not_in_future]
        )
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
        preferred_language = serializers.ChoiceField(
            choices=Member.Language.choices, required=False
        )
        joined_at = serializers.DateField(required=False, validators=[not_in_future])
        status = serializers.ChoiceField(choices=Member.Status.choices, required=False)

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if self.context.get("creating") and not attrs.get("name"):
                raise serializers.ValidationError(
                    {
                        "name": [
                            serializers.ErrorDetail(
                                _("A new member needs a name."), code="required"
                            )
                        ]
                    }
                )
            return attrs

    OutputSerializer = member_detail_sections.compose(MemberDetailOutputSerializer)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, customer_no: str):
        return Response(self.OutputSerializer(member_get(customer_no=customer_no)).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 201: OutputSerializer, **problems(MemberClosed)},
    )
    def put(self, request, customer_no: str):
        customer_no = _customer_no_from_path(customer_no)
        serializer = self.InputSerializer(
            data=request_body(request),
            context={"creating": not member_exists(customer_no=customer_no)},
        )
        serializer.is_valid(raise_exception=True)
        _member, created = member_upsert(
            customer_no=customer_no, actor=request.user, **serializer.validated_data
        )
        body = self.OutputSerializer(member_get(customer_no=customer_no)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["me"])
@nested_components
class MeApi(APIView):
    """The signed-in member's profile (phone masked), tier and points balance."""

    # The docstring is the schema's description: it names what the registered sections add.

    permission_classes = [IsMember]
    OutputSerializer = me_sections.compose(MeOutputSerializer)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(self.OutputSerializer(request.user.member).data)


@extend_schema(tags=["auth"])
@nested_components
class MemberTokenApi(APIView):
    """The banking gateway exchanges an authenticated customer session for a member token."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.issue_member_token",)

    class InputSerializer(serializers.Serializer):
        customer_no = CustomerNoField()

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()
        customer_no = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **problems(MemberNotFound, MemberInactive)},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member = member_get(customer_no=serializer.validated_data["customer_no"])
        if member.status == Member.Status.CLOSED:
            raise MemberInactive()
        refresh = member_token_issue(member=member)
        return Response(
            self.OutputSerializer(
                {
                    "access": str(refresh.access_token),
                    "refresh": str(refresh),
                    "customer_no": member.customer_no,
                }
            ).data
        )


@extend_schema(tags=["ingest"])
@nested_components
class AssetSnapshotIngestApi(APIView):
    """``{"snapshots": [...]}`` (at most 1,000): valid items are stored (a re-sent one replaces
    its date's values), invalid ones are listed under ``rejected`` with their reasons."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.add_assetsnapshot",)

    class InputSerializer(serializers.Serializer):
        """The request body, for the schema: the view validates each item alone, so an item
        that does not match is not refused with the batch but listed under ``rejected``."""

        snapshots = serializers.ListField(
            child=AssetSnapshotItemSerializer(), min_length=1, max_length=BATCH_LIMIT
        )

    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        rejected = BatchRejectionSerializer(many=True)

    @extend_schema(
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            202: OutputSerializer,
            **problems(IdempotencyKeyInvalid, IdempotencyConflict, BatchTooLarge),
        },
    )
    @idempotent()
    def post(self, request):
        valid, rejected = asset_snapshot_items_validate(batch_items(request.data, key="snapshots"))
        counts = asset_snapshots_store(snapshots=valid)
        result = {
            "accepted": counts["created"] + counts["updated"],
            "duplicates": counts["unchanged"],
            "created": counts["created"],
            "updated": counts["updated"],
            "rejected": rejected,
        }
        return Response(self.OutputSerializer(result).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["me"])
@nested_components
class MeMessageListApi(generics.ListAPIView):
    """The signed-in member's messages, newest first; ``?unread=true`` for unread only."""

    permission_classes = [IsMember]
    OutputSerializer = MessageOutputSerializer
    serializer_class = OutputSerializer
    queryset = Message.objects.none()  # the model, for the schema; rows come from the selector
    filterset_class = MessageFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return member_messages(member=self.request.user.member)


@extend_schema(tags=["me"])
@nested_components
class MeMessageReadApi(APIView):
    """Mark one of my messages read (another member's message answers 404)."""

    permission_classes = [IsMember]
    OutputSerializer = MessageOutputSerializer

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request, message_id):
        member = request.user.member
        messages_mark_read(member=member, message_ids=[message_id])
        message = member_message_get(member=member, message_id=message_id)
        return Response(self.OutputSerializer(message).data)
