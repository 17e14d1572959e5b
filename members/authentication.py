"""JWT authentication that knows two kinds of token.

Staff and service tokens carry ``user_id`` and authenticate a Django user. Member tokens, issued by
the member-token exchange to the banking gateway, carry ``customer_no`` and authenticate a
:class:`MemberPrincipal`, which holds no Django permission and reaches only member endpoints.
"""

from django.utils.translation import gettext as _
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import RefreshToken

from members.models import Member

MEMBER_CLAIM = "customer_no"


class MemberPrincipal:
    """``request.user`` for a member token."""

    is_member = True
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, member: Member) -> None:
        self.member = member

    def __str__(self) -> str:
        return f"member:{self.member.customer_no}"

    @property
    def idempotency_scope(self) -> str:
        return f"member:{self.member.customer_no}"

    audit_label = idempotency_scope

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def has_perms(self, perm_list, obj=None) -> bool:
        return False


def member_active_get(customer_no: str) -> Member:
    """The member a member token names, if it may still act: one query on the unique
    ``customer_no`` index. A frozen, closed or unknown member answers 401 ``member_inactive``,
    whatever the token's expiry; unfreezing the member makes their tokens work again."""
    try:
        member = Member.objects.get(customer_no=customer_no)
    except Member.DoesNotExist:
        member = None
    if member is None or member.status != Member.Status.ACTIVE:
        raise AuthenticationFailed(_("This member can no longer sign in."), code="member_inactive")
    return member


class LoyaltyJWTAuthentication(JWTAuthentication):
    """Also the refresh endpoint's check (``loyalty.api.views``): a refresh token is refused
    exactly when an access token for the same caller would be."""

    def get_user(self, validated_token):
        customer_no = validated_token.get(MEMBER_CLAIM)
        if customer_no is None:
            # Staff and service accounts: unknown or inactive users are refused here.
            return super().get_user(validated_token)
        return MemberPrincipal(member_active_get(customer_no))


def member_token_issue(*, member: Member) -> RefreshToken:
    """A refresh token (and through it access tokens) that acts as ``member`` only."""
    token = RefreshToken()
    token[MEMBER_CLAIM] = member.customer_no
    return token
