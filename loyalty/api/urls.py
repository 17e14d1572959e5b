from django.urls import path

from loyalty.api.views import TokenObtainApi, TokenRefreshApi

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="auth-token-refresh"),
]
