from django.urls import path

from insights.api.surveys import (
    MeSurveyAnswerApi,
    MeSurveyListApi,
    SurveyCloseApi,
    SurveyDetailApi,
    SurveyListCreateApi,
    SurveySendApi,
)

urlpatterns = [
    path("me/surveys/", MeSurveyListApi.as_view(), name="me-surveys"),
    path(
        "me/surveys/<uuid:response_id>/answer/",
        MeSurveyAnswerApi.as_view(),
        name="me-survey-answer",
    ),
    path("surveys/", SurveyListCreateApi.as_view(), name="survey-list"),
    path("surveys/<uuid:survey_id>/", SurveyDetailApi.as_view(), name="survey-detail"),
    path("surveys/<uuid:survey_id>/send/", SurveySendApi.as_view(), name="survey-send"),
    path("surveys/<uuid:survey_id>/close/", SurveyCloseApi.as_view(), name="survey-close"),
]
