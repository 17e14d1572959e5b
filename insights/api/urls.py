from django.urls import include, path

urlpatterns = [
    path("", include("insights.api.kpi_urls")),
    path("", include("insights.api.recommendation_urls")),
    path("", include("insights.api.survey_urls")),
]
