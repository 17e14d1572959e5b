from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, LoyaltyError, NotFound


class EventNotFound(NotFound):
    code = "not_found"
    default_detail = _("No event with this id.")


class InvitationNotFound(NotFound):
    code = "not_found"
    default_detail = _("No invitation with this id or code.")


class RsvpClosed(Conflict):
    code = "rsvp_closed"
    default_detail = _(
        "Answers are closed: the RSVP deadline has passed or the event is cancelled."
    )


class InvalidSeats(LoyaltyError):
    code = "invalid_seats"
    status = 400
    default_detail = _("An invitation takes from one seat to the event's seats per invitation.")


class NotAttended(Conflict):
    code = "not_attended"
    default_detail = _("Only members who attended the event can give feedback.")


class FeedbackGiven(Conflict):
    code = "feedback_given"
    default_detail = _("You have already given feedback on this event.")


class CheckInClosed(Conflict):
    code = "check_in_closed"
    default_detail = _("This invitation cannot be checked in: it is not an accepted one.")
