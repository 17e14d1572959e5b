from celery import shared_task

from members.services.members import members_closures_finalise
from members.services.messages import messages_deliver


@shared_task(name="members.messages_deliver")
def messages_deliver_task(limit: int = 500) -> int:
    """Send pending member messages through the configured channel."""
    return messages_deliver(limit=limit)


@shared_task(name="members.tier_evaluate", acks_late=True)
def tier_evaluate_task(run_id: str | None = None, as_of: str | None = None) -> str | None:
    """Process an evaluation run. Without ``run_id`` (the monthly schedule) start one first,
    as of ``as_of`` or the end of the previous month; if a run is already active, leave it."""
    import datetime as dt

    from members.errors import EvaluationRunning
    from members.models import TierEvaluationRun
    from members.services.evaluation import tier_evaluate, tier_evaluation_start

    if run_id is None:
        try:
            run = tier_evaluation_start(
                as_of=dt.date.fromisoformat(as_of) if as_of else None,
                trigger=TierEvaluationRun.Trigger.SCHEDULE,
            )
        except EvaluationRunning:
            return None
        # The start enqueued this task again with the run id, after its commit.
        return str(run.run_id)
    import time

    from django.conf import settings

    budget = settings.TIER_EVALUATION_TIME_BUDGET
    started = time.monotonic()
    run = tier_evaluate(run_id=run_id, time_budget=budget)
    if run.status == TierEvaluationRun.Status.RUNNING and time.monotonic() - started >= budget:
        # Out of time with chunks left: carry on in a fresh task, well inside the time limit.
        tier_evaluate_task.delay(run_id=str(run.run_id))
    return str(run.run_id)


@shared_task(name="members.tier_overrides_expire")
def tier_overrides_expire_task() -> int:
    """Daily: members whose tier override expired go back to their qualified tier."""
    from members.services.overrides import tier_overrides_expire

    return tier_overrides_expire()


@shared_task(name="members.closures_finalise")
def closures_finalise_task() -> int:
    """Daily: closures whose notice period is over become final (points forfeited)."""
    return members_closures_finalise()


@shared_task(name="members.segments_refresh")
def segments_refresh_task() -> dict[str, int]:
    """Nightly: every segment's members refreshed from its rule and counted."""
    from members.services.segments import segments_refresh_all

    return segments_refresh_all()
