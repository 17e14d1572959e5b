"""Who may call what.

Two kinds of caller reach the API: staff and service accounts (Django users with role groups)
and members (a member token; ``request.user`` is a principal with ``is_member = True``).
"""

from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission


def is_member(user) -> bool:
    return bool(getattr(user, "is_member", False))


class IsMember(BasePermission):
    """Member tokens only: the ``/api/v1/me/...`` endpoints."""

    def has_permission(self, request, view) -> bool:
        return is_member(request.user)


class HasRolePermission(BasePermission):
    """Staff or service accounts holding the Django permissions the view asks for.

    A view sets ``required_permissions``: a tuple for every method, or a mapping from method
    (``"GET"``, ``"POST"``, ...; ``"*"`` for the rest) to a tuple. Member tokens never pass.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if is_member(user) and "customer_no" in getattr(view, "kwargs", {}):
            # A member token on a staff path about a member: that member's (or another's)
            # resource, so 404 as API.md says, never 403 and never the data.
            raise NotFound()
        if user is None or not user.is_authenticated or is_member(user):
            return False
        if not user.is_active:
            return False
        required = getattr(view, "required_permissions", None)
        if isinstance(required, dict):
            # HEAD reads what GET reads; a method the view does not list is refused.
            method = "GET" if request.method == "HEAD" else request.method
            required = required.get(method, required.get("*"))
        if required is None:
            return False
        return user.has_perms(required)


class IsMemberReadOrStaffWithRole(HasRolePermission):
    """Catalogue endpoints: members may read; staff need their role's permissions."""

    def has_permission(self, request, view) -> bool:
        if is_member(request.user):
            return request.method in SAFE_METHODS
        return super().has_permission(request, view)
