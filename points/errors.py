from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, LoyaltyError, PermissionDenied


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    status = 422
    default_detail = _("The points balance is too low for this.")


class FourEyesRequired(PermissionDenied):
    code = "four_eyes_required"
    default_detail = _(
        "An adjustment must be approved or rejected by someone other than its requester."
    )


class AdjustmentDecided(Conflict):
    code = "adjustment_decided"
    default_detail = _("This adjustment was already approved or rejected.")


class MemberInactive(Conflict):
    code = "member_inactive"
    default_detail = _("This member is frozen or closed.")
