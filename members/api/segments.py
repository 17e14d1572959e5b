"""Segments over HTTP: marketing lists, creates, changes and previews them.

Each body nests the rule's grammar (``members.segments.SegmentRule``), so a bad part answers
400 naming it (``rule.age_min``, ``rule.tiers``) and nothing is written.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.permissions import HasRolePermission
from loyalty.api.schema import nested_components, problems
from loyalty.api.serializers import StrictSerializer
from members.errors import SegmentNotFound
from members.models import Segment
from members.segments import SegmentRule
from members.selectors import segment_get, segment_list
from members.services.segments import segment_create, segment_preview, segment_update


class SegmentInputSerializer(StrictSerializer):
    """A segment as marketing writes it (``PATCH``: any subset). ``name`` and ``description``
    are the English texts, ``*_zh_hans`` the Simplified Chinese ones."""

    name = serializers.CharField(max_length=100, source="name_en")
    name_zh_hans = serializers.CharField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, source="description_en"
    )
    description_zh_hans = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    rule = SegmentRule()


class SegmentOutputSerializer(serializers.ModelSerializer):
    name = serializers.CharField()
    description = serializers.CharField()
    rule = SegmentRule()

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "name_en",
            "name_zh_hans",
            "description",
            "rule",
            "member_count",
            "refreshed_at",
        ]
        read_only_fields = fields


class SegmentSampleSerializer(serializers.Serializer):
    customer_no = serializers.CharField()
    tier = serializers.CharField(allow_null=True)
    city = serializers.CharField()
    branch_code = serializers.CharField()


@extend_schema(tags=["segments"])
@nested_components
class SegmentListCreateApi(generics.ListAPIView):
    """Marketing: segments by name; ``POST`` creates one and counts its members at once."""

    permission_classes = [HasRolePermission]
    required_permissions = {"GET": ("members.view_segment",), "POST": ("members.add_segment",)}
    InputSerializer = SegmentInputSerializer
    OutputSerializer = SegmentOutputSerializer
    serializer_class = OutputSerializer
    queryset = Segment.objects.none()  # the model, for the schema; rows: the selector
    ordering_fields = ["name_en", "member_count", "refreshed_at"]
    ordering = ["name_en"]

    def get_queryset(self):
        return segment_list()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = segment_create(actor=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer(segment).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["segments"])
@nested_components
class SegmentDetailApi(APIView):
    """Marketing: one segment; ``PATCH`` changes the fields sent (a new rule is counted at
    once)."""

    permission_classes = [HasRolePermission]
    required_permissions = {
        "GET": ("members.view_segment",),
        "PATCH": ("members.change_segment",),
    }
    InputSerializer = SegmentInputSerializer
    OutputSerializer = SegmentOutputSerializer

    @extend_schema(responses={200: OutputSerializer, **problems(SegmentNotFound)})
    def get(self, request, segment_id):
        return Response(self.OutputSerializer(segment_get(segment_id=segment_id)).data)

    @extend_schema(
        request=InputSerializer(partial=True),
        responses={200: OutputSerializer, **problems(SegmentNotFound)},
    )
    def patch(self, request, segment_id):
        segment = segment_get(segment_id=segment_id)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        segment = segment_update(
            segment=segment, actor=request.user, changes=dict(serializer.validated_data)
        )
        return Response(self.OutputSerializer(segment).data)


@extend_schema(tags=["segments"])
@nested_components
class SegmentPreviewApi(APIView):
    """Marketing: how many active members a rule selects, and a sample of them (customer
    number, tier, city, branch), without saving anything."""

    permission_classes = [HasRolePermission]
    required_permissions = ("members.view_segment",)

    class InputSerializer(StrictSerializer):
        rule = SegmentRule()

    class OutputSerializer(serializers.Serializer):
        member_count = serializers.IntegerField()
        sample = SegmentSampleSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = segment_preview(rule=serializer.validated_data["rule"])
        return Response(self.OutputSerializer(preview).data)


class SegmentRefField(serializers.PrimaryKeyRelatedField):
    """A segment by id (null: none); an id that names no segment, or an empty string, is
    refused (DRF would read ``""`` as null)."""

    def __init__(self, **kwargs):
        super().__init__(queryset=Segment.objects.all(), allow_null=True, **kwargs)

    def run_validation(self, data=serializers.empty):
        if data == "":
            self.fail("incorrect_type", data_type="str")
        return super().run_validation(data)
