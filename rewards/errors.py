from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, LoyaltyError, NotFound, PermissionDenied


class RewardNotFound(NotFound):
    code = "not_found"
    default_detail = _("No reward with this id.")


class RedemptionNotFound(NotFound):
    code = "not_found"
    default_detail = _("No redemption with this id.")


class NotEligible(PermissionDenied):
    code = "not_eligible"
    default_detail = _("This reward is not available to you.")


class OutOfStock(Conflict):
    code = "out_of_stock"
    default_detail = _("This reward is out of stock.")


class BudgetExhausted(Conflict):
    code = "budget_exhausted"
    default_detail = _("This reward has used its points budget for the month; try next month.")


class LimitExceeded(LoyaltyError):
    code = "limit_exceeded"
    status = 422
    default_detail = _("You have reached the limit for this reward in the current period.")


class RedemptionClosed(Conflict):
    code = "redemption_closed"
    default_detail = _("This redemption was already fulfilled or cancelled.")


class CashUnpaid(Conflict):
    code = "cash_unpaid"
    default_detail = _("The cash co-payment of this redemption is not paid yet.")


class CashNotDue(Conflict):
    code = "cash_not_due"
    default_detail = _("This redemption has no cash co-payment open.")


class CashPaid(Conflict):
    code = "cash_paid"
    default_detail = _(
        "The co-payment of this redemption is paid; please ask the bank to cancel it."
    )
