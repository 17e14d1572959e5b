from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.serializers import TokenRefreshSerializer

from loyalty.api.throttling import AddressRateThrottle, UsernameRateThrottle


def _token_authentication() -> JWTAuthentication:
    """The JWT authentication the API is configured with (``DEFAULT_AUTHENTICATION_CLASSES``),
    so the refresh endpoint refuses the callers the other endpoints refuse (inactive staff,
    frozen or closed members) without this app knowing the kinds of token."""
    for auth_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if isinstance(auth_class, type) and issubclass(auth_class, JWTAuthentication):
            return auth_class()
    return JWTAuthentication()


class _RefreshSerializer(TokenRefreshSerializer):
    """``{refresh}`` -> ``{access}``, once the token's caller may still act.

    The caller is looked up as an access token's would be: a staff user made inactive, or a
    member who is frozen, closed or gone, is refused (401) whatever the token's expiry. A
    refresh token whose user no longer exists is an invalid token (401), not a crash.
    """

    def validate(self, attrs):
        refresh = self.token_class(attrs["refresh"])  # a TokenError: the view answers 401
        try:
            _token_authentication().get_user(refresh)
        except get_user_model().DoesNotExist:
            raise InvalidToken() from None
        except AuthenticationFailed as exc:
            # simplejwt's own code sits in the detail dict: {"detail": ..., "code": ...}.
            if isinstance(exc.detail, dict) and exc.detail.get("code") == "user_not_found":
                raise InvalidToken() from None
            raise
        # No rotation: the contract is ``{refresh}`` -> ``{access}``.
        return {"access": str(refresh.access_token)}


@extend_schema(tags=["auth"])
class TokenObtainApi(jwt_views.TokenObtainPairView):
    """Staff and service accounts: ``{username, password}`` -> ``{access, refresh}``."""

    permission_classes = (AllowAny,)  # type: ignore[assignment]  # stubs pin TokenViewBase to ()
    authentication_classes = ()
    throttle_classes = (AddressRateThrottle, UsernameRateThrottle)
    throttle_scope = "auth"


@extend_schema(tags=["auth"])
class TokenRefreshApi(jwt_views.TokenRefreshView):
    """``{refresh}`` -> ``{access}`` for staff, service and member tokens alike."""

    permission_classes = (AllowAny,)  # type: ignore[assignment]  # stubs pin TokenViewBase to ()
    authentication_classes = ()
    throttle_classes = (AddressRateThrottle,)
    # Its own budget (THROTTLE_REFRESH_RATE): failed sign-ins must not block refreshes.
    throttle_scope = "auth_refresh"
    serializer_class = _RefreshSerializer
