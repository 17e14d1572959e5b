from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, NotFound


class MemberNotFound(NotFound):
    code = "not_found"
    default_detail = _("No member with this customer number.")


class MemberInactive(Conflict):
    code = "member_inactive"
    default_detail = _("This member is frozen or closed.")


class MemberClosed(Conflict):
    code = "member_closed"
    default_detail = _("This member is closed; a closed membership cannot change.")


class TierNotFound(NotFound):
    code = "not_found"
    default_detail = _("No tier with this code.")


class EvaluationRunNotFound(NotFound):
    code = "not_found"
    default_detail = _("No evaluation run with this id.")


class TierOverrideNotFound(NotFound):
    code = "not_found"
    default_detail = _("No tier override with this id.")


class EvaluationRunning(Conflict):
    code = "evaluation_running"
    default_detail = _("A tier evaluation is already queued or running; wait for it to finish.")

    def __init__(self, *, run_id: str) -> None:
        super().__init__(run_id=run_id)


class NoActiveTiers(Conflict):
    code = "no_active_tiers"
    default_detail = _("No tier is active, so there is nothing to evaluate against.")


class EvaluationNotResumable(Conflict):
    code = "evaluation_not_resumable"
    default_detail = _("This evaluation run is done; start a new one instead.")


class TierInactive(Conflict):
    code = "tier_inactive"
    default_detail = _("This tier is not active.")


class TierOverridePending(Conflict):
    code = "override_pending"
    default_detail = _("This member already has a tier override waiting for approval.")


class TierOverrideNotPending(Conflict):
    code = "override_not_pending"
    default_detail = _("This tier override was already approved or rejected.")


class TierOverrideExpired(Conflict):
    code = "override_expired"
    default_detail = _("This tier override has already expired.")


class SegmentNotFound(NotFound):
    code = "not_found"
    default_detail = _("No segment with this id.")
