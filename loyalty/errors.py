"""The root of every domain error: a stable ``code``, an HTTP status, a translated message.

Apps subclass :class:`LoyaltyError` (``points.errors.InsufficientPoints`` and so on); the API's
exception handler turns any of them into RFC 9457 problem details. Codes are part of the API
contract: never rename one.
"""

from typing import Any

from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _


class LoyaltyError(Exception):
    code = "error"
    status = 400
    default_detail: Any = _("The request could not be completed.")

    def __init__(self, detail: Any = None, **extra: Any) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.extra = extra
        super().__init__(force_str(self.detail))


class NotFound(LoyaltyError):
    code = "not_found"
    status = 404
    default_detail = _("Not found.")


class PermissionDenied(LoyaltyError):
    code = "permission_denied"
    status = 403
    default_detail = _("You do not have permission to perform this action.")


class Conflict(LoyaltyError):
    code = "conflict"
    status = 409
    default_detail = _("The request conflicts with the current state.")


class IdempotencyConflict(LoyaltyError):
    code = "idempotency_conflict"
    status = 409
    default_detail = _("This Idempotency-Key was already used with a different request.")


class IdempotencyKeyRequired(LoyaltyError):
    code = "idempotency_key_required"
    status = 400
    default_detail = _("This request needs an Idempotency-Key header.")


class IdempotencyKeyInvalid(LoyaltyError):
    code = "idempotency_key_invalid"
    status = 400
    default_detail = _("The Idempotency-Key header must be 1 to 255 printable characters.")


class BatchTooLarge(LoyaltyError):
    code = "batch_too_large"
    status = 413
    default_detail = _("A batch may hold at most %(limit)s items.")

    def __init__(self, *, limit: int) -> None:
        super().__init__(self.default_detail % {"limit": limit}, limit=limit)


class FourEyesRequired(PermissionDenied):
    """Maker-checker: whoever requested a change may not also approve or reject it."""

    code = "four_eyes_required"
    default_detail = _("A different person must approve or reject what you requested.")


def four_eyes_check(*, requested_by_id: object, actor: object) -> None:
    """Raise :class:`FourEyesRequired` when ``actor`` is the requester. Every maker-checker
    decision (points adjustments, tier overrides) goes through here."""
    if requested_by_id == getattr(actor, "pk", None):
        raise FourEyesRequired()
