"""OpenAPI descriptions drf-spectacular cannot infer by itself."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class LoyaltyJWTScheme(OpenApiAuthenticationExtension):
    target_class = "members.authentication.LoyaltyJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A staff, service or member access token from /api/v1/auth/.",
        }
