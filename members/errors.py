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
