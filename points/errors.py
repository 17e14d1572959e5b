from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, LoyaltyError


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    status = 422
    default_detail = _("The points balance is too low for this.")


class AdjustmentDecided(Conflict):
    code = "adjustment_decided"
    default_detail = _("This adjustment was already approved or rejected.")
