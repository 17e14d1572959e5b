from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import views as jwt_views


class TokenObtainApi(jwt_views.TokenObtainPairView):
    """Staff and service accounts: ``{username, password}`` -> ``{access, refresh}``."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


class TokenRefreshApi(jwt_views.TokenRefreshView):
    """``{refresh}`` -> ``{access}`` for staff, service and member tokens alike."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


TokenObtainApi = extend_schema(tags=["auth"])(TokenObtainApi)
TokenRefreshApi = extend_schema(tags=["auth"])(TokenRefreshApi)
