"""The Celery beat schedules' names and descriptions, marked for translation.

The migrations that create the schedules write their English text into django-celery-beat's
rows (a row is data, not code); the console shows a row's name and description through
``schedule_text``, in the reader's language when the text is one of these. A schedule whose text
is not here is shown as written; ``tests/loyalty/test_schedules.py`` keeps the list complete.
"""

from django.utils.translation import gettext, gettext_noop

SCHEDULE_TEXTS = (
    gettext_noop("Daily closure finalisation"),
    gettext_noop(
        "Makes final the closures whose notice period is over (their points are forfeited)."
    ),
    gettext_noop("Daily tier override expiry"),
    gettext_noop("Moves members whose tier override expired back to their qualified tier."),
    gettext_noop("Monthly tier evaluation"),
    gettext_noop("Evaluates every member's tier as of the end of the previous month."),
    gettext_noop("Nightly segment refresh"),
    gettext_noop("Refreshes every segment's members from its rule and counts them."),
    gettext_noop("events: mark no-shows"),
    gettext_noop("Accepted members who did not check in at an event that has ended are no-shows."),
    gettext_noop("events: pass on lapsed seat offers"),
    gettext_noop("Offers not confirmed in time lapse; their seats go to the next on the waitlist."),
    gettext_noop("events: send due invitations"),
    gettext_noop("Invites the members each published event targets once its invite time has come."),
    gettext_noop("events: send reminders"),
    gettext_noop("Reminds the accepted invitations of the events starting within 24 hours."),
    gettext_noop("insights: monthly KPI snapshots and customer values"),
    gettext_noop(
        "Stores the KPIs of the month just closed and refreshes every member's value and "
        "churn risk."
    ),
    gettext_noop("insights: nightly recommendations"),
    gettext_noop("Ranks the rewards and events recommended to every active member."),
    gettext_noop("loyalty: purge expired idempotency keys"),
    gettext_noop("Deletes Idempotency-Key records older than IDEMPOTENCY_RETENTION_DAYS."),
    gettext_noop("points: expire due points and warn"),
    gettext_noop("points: reconcile accounts"),
    gettext_noop("points: sweep the transaction inbox"),
)


def schedule_text(text: str) -> str:
    """``text`` in the active language when it is a schedule's known text, else as it is."""
    return gettext(text) if text in SCHEDULE_TEXTS else text
