"""Surveys over HTTP: marketing creates, sends and closes them and reads their figures; a member
lists the surveys sent to them and answers each once."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from insights.errors import (
    SurveyAnswered,
    SurveyClosed,
    SurveyNotDraft,
    SurveyNotFound,
    SurveyNotSent,
)
from insights.models import Survey, SurveyResponse
from insights.selectors import (
    member_survey_get,
    member_surveys,
    survey_figures,
    survey_get,
    survey_list,
)
from insights.services.surveys import survey_answer, survey_close, survey_create, survey_send
from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.api.schema import nested_components, problems
from loyalty.api.serializers import StrictSerializer
from members.api.segments import SegmentRefField


class SurveyInputSerializer(StrictSerializer):
    """A survey as marketing writes it: ``question`` (English), ``question_zh_hans``, the
    ``segment`` it goes to (null: every active member with marketing consent), ``closes_at``."""

    question = serializers.CharField(max_length=200, source="question_en")
    question_zh_hans = serializers.CharField(max_length=200, required=False, allow_blank=True)
    segment = SegmentRefField(required=False)
    closes_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_closes_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError(_("This time has passed."), code="past")
        return value


class SurveyFiguresSerializer(serializers.Serializer):
    sent = serializers.IntegerField()
    answered = serializers.IntegerField()
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()
    score_avg = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    nps = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)


class SurveyOutputSerializer(serializers.ModelSerializer):
    question = serializers.CharField()
    figures = serializers.SerializerMethodField()

    class Meta:
        model = Survey
        fields = [
            "id",
            "question",
            "question_en",
            "question_zh_hans",
            "segment",
            "status",
            "closes_at",
            "sent_at",
            "created_at",
            "figures",
        ]
        read_only_fields = fields

    @extend_schema_field(SurveyFiguresSerializer)
    def get_figures(self, survey: Survey) -> dict:
        return SurveyFiguresSerializer(survey_figures(survey=survey)).data


@extend_schema(tags=["surveys"])
@nested_components
class SurveyListCreateApi(generics.ListAPIView):
    """Marketing: surveys, newest first, with their figures; ``POST`` creates a draft."""

    permission_classes = [HasRolePermission]
    required_permissions = {"GET": ("insights.view_survey",), "POST": ("insights.add_survey",)}
    InputSerializer = SurveyInputSerializer
    OutputSerializer = SurveyOutputSerializer
    serializer_class = OutputSerializer
    queryset = Survey.objects.none()  # the model, for the schema; rows: the selector
    ordering = ["-created_at"]

    def get_queryset(self):
        return survey_list()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        survey = survey_create(actor=request.user, fields=dict(serializer.validated_data))
        return Response(self.OutputSerializer(survey).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["surveys"])
@nested_components
class SurveyDetailApi(APIView):
    """Marketing: one survey with its figures (sent, answered, promoters 9-10, passives 7-8,
    detractors 0-6, average score, NPS)."""

    permission_classes = [HasRolePermission]
    required_permissions = ("insights.view_survey",)
    OutputSerializer = SurveyOutputSerializer

    @extend_schema(responses={200: OutputSerializer, **problems(SurveyNotFound)})
    def get(self, request, survey_id):
        return Response(self.OutputSerializer(survey_get(survey_id=survey_id)).data)


@extend_schema(tags=["surveys"])
@nested_components
class SurveySendApi(APIView):
    """Marketing: send a draft survey now, once, to its segment's members (or every active
    member with marketing consent) through the inbox."""

    permission_classes = [HasRolePermission]
    required_permissions = ("insights.change_survey",)
    OutputSerializer = SurveyOutputSerializer

    @extend_schema(
        request=None, responses={200: OutputSerializer, **problems(SurveyNotFound, SurveyNotDraft)}
    )
    def post(self, request, survey_id):
        survey = survey_get(survey_id=survey_id)
        survey_send(survey=survey, actor=request.user)
        return Response(self.OutputSerializer(survey_get(survey_id=survey_id)).data)


@extend_schema(tags=["surveys"])
@nested_components
class SurveyCloseApi(APIView):
    """Marketing: close a sent survey; answers are refused from then on."""

    permission_classes = [HasRolePermission]
    required_permissions = ("insights.change_survey",)
    OutputSerializer = SurveyOutputSerializer

    @extend_schema(
        request=None, responses={200: OutputSerializer, **problems(SurveyNotFound, SurveyNotSent)}
    )
    def post(self, request, survey_id):
        survey = survey_close(survey=survey_get(survey_id=survey_id), actor=request.user)
        return Response(self.OutputSerializer(survey).data)


class MySurveyOutputSerializer(serializers.ModelSerializer):
    survey_id = serializers.UUIDField(source="survey.id")
    question = serializers.CharField(source="survey.question")
    closes_at = serializers.DateTimeField(source="survey.closes_at", allow_null=True)
    open = serializers.SerializerMethodField()

    class Meta:
        model = SurveyResponse
        fields = [
            "id",
            "survey_id",
            "question",
            "sent_at",
            "closes_at",
            "open",
            "score",
            "comment",
            "answered_at",
        ]
        read_only_fields = fields

    def get_open(self, response: SurveyResponse) -> bool:
        """Whether it can still be answered: not answered, survey not closed or past its
        closing time."""
        return response.answered_at is None and response.survey.is_open()


@extend_schema(tags=["me"])
@nested_components
class MeSurveyListApi(generics.ListAPIView):
    """The surveys sent to the signed-in member, newest first."""

    permission_classes = [IsMember]
    serializer_class = MySurveyOutputSerializer
    queryset = SurveyResponse.objects.none()  # the model, for the schema; rows: the selector
    ordering = ["-sent_at"]

    def get_queryset(self):
        return member_surveys(member=self.request.user.member)


@extend_schema(tags=["me"])
@nested_components
class MeSurveyAnswerApi(APIView):
    """Answer a survey sent to me, once: ``score`` 0-10 and an optional ``comment``."""

    permission_classes = [IsMember]

    class InputSerializer(StrictSerializer):
        score = serializers.IntegerField(min_value=0, max_value=10)
        comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    OutputSerializer = MySurveyOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **problems(SurveyNotFound, SurveyAnswered, SurveyClosed),
        },
    )
    def post(self, request, response_id):
        response = member_survey_get(member=request.user.member, response_id=response_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answered = survey_answer(response=response, **serializer.validated_data)
        return Response(self.OutputSerializer(answered).data, status=status.HTTP_201_CREATED)
