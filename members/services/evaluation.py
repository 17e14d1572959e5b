"""Tier evaluation runs: every member's tier decided as of a month-end, in chunks, exactly once.

At most one run is queued or running (the database's partial unique index decides). A run's
members are split into chunks of ids that workers claim with ``SKIP LOCKED``; each chunk's tier
changes, grace counts, history rows, member messages and its share of the run's progress commit
together, exactly once. A crash loses at most the chunks in progress, which the next call (or a
resumed run) evaluates. The decision is SQL that :mod:`members.tier_sql` generates from the
tiers' values, which :func:`_tier_payload` checks first; the simulator
(:mod:`members.services.simulation`) and override expiry (:mod:`members.services.overrides`)
run the same decision with the helpers here.
"""

import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Min
from django.db.models.functions import Greatest
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from loyalty.timeutils import business_today, previous_month_end
from members.errors import (
    EvaluationNotResumable,
    EvaluationRunning,
    EvaluationRunNotFound,
    NoActiveTiers,
)
from members.models import Member, Tier, TierEvaluationChunk, TierEvaluationRun
from members.tier_sql import TIER_STATE_LOCK, evaluate_sql

TIER_CHANGE_TITLE = _("Your membership tier is now %(tier)s")
TIER_UP_BODY = _(
    "Congratulations! Based on your assets and contribution up to %(as_of)s, you are now a "
    "%(tier)s member (previously %(previous)s)."
)
TIER_DOWN_BODY = _(
    "Based on your assets and contribution up to %(as_of)s, your membership tier is now "
    "%(tier)s (previously %(previous)s)."
)
TIER_OVERRIDE_BODY = _(
    "After a review by the bank, your membership tier is now %(tier)s (previously "
    "%(previous)s) until %(until)s."
)


def tier_default_as_of(*, today: dt.date | None = None) -> dt.date:
    """The last business day of the previous month: the latest month-end whose snapshots the
    monthly batch has delivered when the scheduled evaluation runs on the 1st."""
    return previous_month_end(today or business_today())


def _tier_payload(tier: Tier, proposal: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {
        "id": tier.pk,
        "code": tier.code,
        "rank": tier.rank,
        "window_months": tier.window_months,
        "min_avg_aum": tier.min_avg_aum,
        "min_contribution": tier.min_contribution,
        "rule": tier.rule,
        "grace_periods": tier.grace_periods,
        "downgrade_mode": tier.downgrade_mode,
        "active": tier.active,
    }
    values.update(proposal or {})
    # The decision SQL is generated from these values: only numbers and known choices pass.
    for name in ("rank", "window_months", "grace_periods"):
        values[name] = int(values[name])
    if not 1 <= values["window_months"] <= 24 or values["grace_periods"] < 1:
        raise ValueError(f"tier {tier.code}: window_months or grace_periods out of range")
    if values["rule"] not in Tier.Rule.values:
        raise ValueError(f"tier {tier.code}: unknown rule {values['rule']!r}")
    if values["downgrade_mode"] not in Tier.DowngradeMode.values:
        raise ValueError(f"tier {tier.code}: unknown downgrade mode {values['downgrade_mode']!r}")
    for name in ("min_avg_aum", "min_contribution"):
        if values[name] is not None:
            values[name] = str(Decimal(values[name]))
    return values


def _tier_change_text(
    *, language: str, previous: Tier, tier: Tier, as_of: dt.date, until: dt.date | None = None
) -> tuple[str, str]:
    """Title and body of a tier-change message in ``language``."""
    with translation.override(language):
        names = {
            "tier": tier.name,
            "previous": previous.name,
            "as_of": as_of.isoformat(),
            "until": until.isoformat() if until else "",
        }
        if until is not None:
            body = TIER_OVERRIDE_BODY
        elif tier.rank > previous.rank:
            body = TIER_UP_BODY
        else:
            body = TIER_DOWN_BODY
        return str(TIER_CHANGE_TITLE) % names, str(body) % names


def _tier_change_templates(*, tiers: list[Tier], as_of: dt.date) -> list[dict[str, Any]]:
    """Every possible tier-change message for a run, rendered once per language and pair of
    tiers, so the run writes messages for any number of members in one statement.

    The statement writes them as :func:`members.services.messages.member_message_send` would
    (the member's language, one message per ``dedupe_key`` = run and member); calling it per
    member would make a run's time grow with the number of changes by a Python round trip each.
    Each template also carries what the message's ``data`` names (the tiers' codes, the
    direction), so the statement builds that once per template, not once per member.
    """
    return [
        {
            "language": language,
            "from_id": previous.pk,
            "to_id": tier.pk,
            "tier": tier.code,
            "previous": previous.code,
            "direction": "up" if tier.rank > previous.rank else "down",
            **dict(
                zip(
                    ("title", "body"),
                    _tier_change_text(language=language, previous=previous, tier=tier, as_of=as_of),
                    strict=True,
                )
            ),
        }
        for language in Member.Language.values
        for previous in tiers
        for tier in tiers
        if previous.pk != tier.pk
    ]


def tier_evaluation_start(
    *,
    actor: Any = None,
    as_of: dt.date | None = None,
    trigger: str = TierEvaluationRun.Trigger.MANUAL,
    chunk_size: int | None = None,
) -> TierEvaluationRun:
    """Queue an evaluation of every member's tier as of ``as_of`` (default: the end of the
    previous month) and enqueue its task once this transaction commits.

    At most one run is queued or running: while one is, this raises :class:`EvaluationRunning`
    naming it (the database's partial unique index decides, so two requests at the same moment
    cannot both start one).
    """
    as_of = as_of or tier_default_as_of()
    if not Tier.objects.filter(active=True).exists():
        raise NoActiveTiers()
    chunk_size = chunk_size or getattr(settings, "TIER_EVALUATION_CHUNK_SIZE", 10_000)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                # The plugin types ``requested_by`` as the concrete User and ``chunk_size`` comes
                # from an untyped setting; both hold the right values at run time.
                run = TierEvaluationRun.objects.create(  # type: ignore[misc]
                    as_of=as_of,
                    trigger=trigger,
                    requested_by=actor if isinstance(actor, AbstractBaseUser) else None,
                    chunk_size=chunk_size,
                    total=Member.objects.exclude(status=Member.Status.CLOSED).count(),
                )
                audit_log_record(
                    actor=actor,
                    action=AuditAction.TIER_EVALUATION_START,
                    target=run,
                    after={"run_id": str(run.run_id), "as_of": as_of.isoformat()},
                )
        except IntegrityError as exc:
            if _constraint_name(exc) != "tier_run_one_active":
                raise
            active = TierEvaluationRun.objects.filter(
                status__in=[TierEvaluationRun.Status.QUEUED, TierEvaluationRun.Status.RUNNING]
            ).first()
            if active is not None:
                raise EvaluationRunning(run_id=str(active.run_id)) from None
            continue  # the active run finished in between: try again
        _tier_evaluation_enqueue(run)
        return run
    raise EvaluationRunning(run_id="")  # three runs finished while we tried: give up


def _constraint_name(exc: IntegrityError) -> str | None:
    """The name of the constraint PostgreSQL reports as violated, if any."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _tier_evaluation_enqueue(run: TierEvaluationRun) -> None:
    """After the commit, hand the run to ``TIER_EVALUATION_WORKERS`` tasks that share its
    chunks (a worker that finds nothing left simply returns)."""
    from members.tasks import tier_evaluate_task

    for _worker in range(getattr(settings, "TIER_EVALUATION_WORKERS", 2)):
        tier_evaluate_task.delay_on_commit(run_id=str(run.run_id))


def tier_evaluation_resume(*, run_id: Any, actor: Any = None) -> TierEvaluationRun:
    """Put workers on a run again: a failed run is queued again (it goes on with the chunks that
    did not commit), a queued or running run whose workers were lost gets new ones (chunks in
    progress elsewhere stay locked, so nothing is evaluated twice). A done run cannot resume."""
    with transaction.atomic():
        run = TierEvaluationRun.objects.select_for_update().filter(run_id=run_id).first()
        if run is None:
            raise EvaluationRunNotFound()
        if run.status == TierEvaluationRun.Status.DONE:
            raise EvaluationNotResumable()
        if run.status == TierEvaluationRun.Status.FAILED:
            try:
                with transaction.atomic():
                    run.status = TierEvaluationRun.Status.QUEUED
                    run.error = ""
                    run.finished_at = None
                    run.save(update_fields=["status", "error", "finished_at"])
            except IntegrityError:
                active = TierEvaluationRun.objects.filter(
                    status__in=[TierEvaluationRun.Status.QUEUED, TierEvaluationRun.Status.RUNNING]
                ).first()
                raise EvaluationRunning(run_id=str(active.run_id) if active else "") from None
        audit_log_record(actor=actor, action=AuditAction.TIER_EVALUATION_RESUME, target=run)
        _tier_evaluation_enqueue(run)
    return run


def _tier_run_prepare(*, run_id: Any) -> TierEvaluationRun:
    """Mark a queued run running and split its members into chunks (once: a resumed run keeps
    the chunks it has, done or not)."""
    with transaction.atomic():
        run = TierEvaluationRun.objects.select_for_update().filter(run_id=run_id).first()
        if run is None:
            raise EvaluationRunNotFound()
        if run.status != TierEvaluationRun.Status.QUEUED:
            return run
        if not run.chunks.exists():
            bounds = Member.objects.aggregate(first=Min("pk"), last=Max("pk"))
            if bounds["first"] is not None:
                start, last, size = bounds["first"] - 1, bounds["last"], run.chunk_size
                TierEvaluationChunk.objects.bulk_create(
                    TierEvaluationChunk(run=run, lo=lo, hi=min(lo + size, last))
                    for lo in range(start, last, size)
                )
        run.status = TierEvaluationRun.Status.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.save(update_fields=["status", "started_at"])
    return run


def _tier_chunk_evaluate(*, run: TierEvaluationRun, sql: str, params: dict[str, Any]) -> bool:
    """Claim one pending chunk of ``run``, evaluate it and record its counts, all in one
    transaction. ``False`` when no chunk is left to claim."""
    with transaction.atomic(), connection.cursor() as cursor:
        chunk = (
            # Lock the chunk only: with the run's row locked too, workers would skip each
            # other's chunks whenever one of them was updating the run's progress.
            TierEvaluationChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(run=run, done=False, run__status=TierEvaluationRun.Status.RUNNING)
            .order_by("lo")
            .first()
        )
        if chunk is None:
            return False
        # Shared with other chunks, exclusive for an override being applied (see tier_sql).
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [TIER_STATE_LOCK])
        # JIT compiling this large statement costs more than running it; the chunk's decisions
        # stay in memory instead of a temporary file.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql, {**params, "lo": chunk.lo, "hi": chunk.hi, "now": timezone.now()})
        names = [column.name for column in cursor.description]
        counts = dict(zip(names, cursor.fetchone(), strict=True))
        # Check the chunk's foreign keys now rather than at the commit: the commit comes after
        # the run's progress update below, and the run's row stays locked until then, so every
        # other worker finishing a chunk would wait for these checks (a good part of a first
        # run's time) to end. Same checks, same transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        progress = {
            key: counts[key] for key in ("processed", "upgraded", "downgraded", "unchanged")
        }
        TierEvaluationChunk.objects.filter(pk=chunk.pk).update(
            done=True, finished_at=timezone.now(), **progress
        )
        TierEvaluationRun.objects.filter(pk=run.pk).update(
            **{key: F(key) + value for key, value in progress.items()}
        )
    return True


def tier_evaluate(*, run_id: Any, time_budget: float | None = None) -> TierEvaluationRun:
    """Work on an evaluation run until no chunk is left, then mark it done. With a
    ``time_budget`` (seconds) it stops taking chunks once that is spent and leaves the run
    running for the next call (the task re-enqueues itself), so no task nears its time limit.

    Guarantees: each chunk's tier changes, grace counts, history rows, member messages and its
    share of the run's progress commit together, exactly once. Several workers may call this
    for the same run at once: they share the chunks. A crash loses at most the chunks in
    progress, which the next call (or :func:`tier_evaluation_resume`) evaluates. A run that is
    done or failed is returned as it is.
    """
    run = _tier_run_prepare(run_id=run_id)
    if run.status != TierEvaluationRun.Status.RUNNING:
        return run
    try:
        tiers = list(Tier.objects.order_by("rank"))
        if not any(tier.active for tier in tiers):
            raise NoActiveTiers()
        sql, params = evaluate_sql(tiers=[_tier_payload(t) for t in tiers], as_of=run.as_of)
        params.update(
            templates=json.dumps(_tier_change_templates(tiers=tiers, as_of=run.as_of)),
            run_pk=run.pk,
            run_id=str(run.run_id),
        )
        started = time.monotonic()
        while _tier_chunk_evaluate(run=run, sql=sql, params=params):
            if time_budget is not None and time.monotonic() - started >= time_budget:
                run.refresh_from_db()
                return run
    except SoftTimeLimitExceeded:
        raise  # the chunk in progress rolled back; the run stays resumable, not failed
    except Exception as exc:
        TierEvaluationRun.objects.filter(pk=run.pk, status=TierEvaluationRun.Status.RUNNING).update(
            status=TierEvaluationRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    # Done once no chunk is left undone; a worker still inside its last chunk finishes it.
    TierEvaluationRun.objects.filter(pk=run.pk, status=TierEvaluationRun.Status.RUNNING).exclude(
        chunks__done=False
    ).update(
        status=TierEvaluationRun.Status.DONE,
        finished_at=timezone.now(),
        total=Greatest(F("total"), F("processed")),
    )
    run.refresh_from_db()
    return run
