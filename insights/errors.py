from django.utils.translation import gettext_lazy as _

from loyalty.errors import Conflict, NotFound


class SurveyNotFound(NotFound):
    code = "not_found"
    default_detail = _("No survey with this id.")


class SurveyNotDraft(Conflict):
    code = "survey_not_draft"
    default_detail = _("This survey has been sent already.")


class SurveyNotSent(Conflict):
    code = "survey_not_sent"
    default_detail = _("This survey has not been sent.")


class SurveyClosed(Conflict):
    code = "survey_closed"
    default_detail = _("This survey is closed.")


class SurveyAnswered(Conflict):
    code = "survey_answered"
    default_detail = _("You have answered this survey already.")
