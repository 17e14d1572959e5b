"""Who may call what.

Two kinds of caller reach the API: staff and service accounts (Django users with role groups)
and members (a member token; ``request.user`` is a principal with ``is_member = True``).

DRF checks permissions before it looks for the view's handler of the method, so a permission
that refused every method it was not told about answered 403 where the path simply has no such
method. Every permission here lets an authenticated caller through for a method the view does
not implement: the view then answers 405 ``method_not_allowed`` with its ``Allow`` header, for
staff, members and superusers alike. A caller with no (valid) token still gets 401.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission


def is_member(user) -> bool:
    return bool(getattr(user, "is_member", False))


def method_implemented(request, view) -> bool:
    """Whether ``view`` has a handler for the request's method (``HEAD`` is ``GET``'s)."""
    method = request.method.lower()
    return method in getattr(view, "http_method_names", ()) and hasattr(view, method)


class ApiPermission(BasePermission):
    """The base of the API's permissions: :meth:`allows` decides for the methods the view
    implements; any other method is left to the view, which answers 405."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        if not method_implemented(request, view):
            return True
        return self.allows(request, view)

    def allows(self, request, view) -> bool:
        raise NotImplementedError


class IsMember(ApiPermission):
    """Member tokens only: the ``/api/v1/me/...`` endpoints."""

    def allows(self, request, view) -> bool:
        return is_member(request.user)


class HasRolePermission(ApiPermission):
    """Staff or service accounts holding the Django permissions the view asks for.

    A view sets ``required_permissions``: a tuple for every method, or a mapping from method
    (``"GET"``, ``"POST"``, ...; ``"*"`` for the rest) to a tuple. Member tokens never pass:
    every staff and integration endpoint answers them 403 ``permission_denied``, the same
    whether or not the path names a member.
    """

    def allows(self, request, view) -> bool:
        user = request.user
        if is_member(user) or not user.is_active:
            return False
        required = getattr(view, "required_permissions", None)
        if isinstance(required, dict):
            # HEAD reads what GET reads; an implemented method the view does not list is
            # refused (OPTIONS, say).
            method = "GET" if request.method == "HEAD" else request.method
            required = required.get(method, required.get("*"))
        if required is None:
            return False
        return user.has_perms(required)


class IsMemberReadOrStaffWithRole(HasRolePermission):
    """Catalogue endpoints: members may read; staff need their role's permissions."""

    def allows(self, request, view) -> bool:
        if is_member(request.user):
            return request.method in SAFE_METHODS
        return super().allows(request, view)
