from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenRefreshSerializer


class _RefreshSerializer(TokenRefreshSerializer):
    """A refresh token whose user no longer exists is an invalid token (401), not a crash."""

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist:
            raise InvalidToken() from None


@extend_schema(tags=["auth"])
class TokenObtainApi(jwt_views.TokenObtainPairView):
    """Staff and service accounts: ``{username, password}`` -> ``{access, refresh}``."""

    permission_classes = (AllowAny,)  # type: ignore[assignment]  # stubs pin TokenViewBase to ()
    authentication_classes = ()
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "auth"


@extend_schema(tags=["auth"])
class TokenRefreshApi(jwt_views.TokenRefreshView):
    """``{refresh}`` -> ``{access}`` for staff, service and member tokens alike."""

    permission_classes = (AllowAny,)  # type: ignore[assignment]  # stubs pin TokenViewBase to ()
    authentication_classes = ()
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "auth"
    serializer_class = _RefreshSerializer
