from django.urls import path

from insights.api.recommendations import MeRecommendationListApi

urlpatterns = [
    path("me/recommendations/", MeRecommendationListApi.as_view(), name="me-recommendations"),
]
