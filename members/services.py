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
from django.forms.models import model_to_dict
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from loyalty.errors import four_eyes_check
from loyalty.services import audit_log_record
from loyalty.timeutils import business_date, business_today, previous_month_end
from members.errors import (
    EvaluationNotResumable,
    EvaluationRunning,
    EvaluationRunNotFound,
    MemberClosed,
    NoActiveTiers,
    TierInactive,
    TierNotFound,
    TierOverrideExpired,
    TierOverrideNotFound,
    TierOverrideNotPending,
    TierOverridePending,
)
from members.models import (
    AssetSnapshot,
    Member,
    MemberTier,
    Message,
    Tier,
    TierEvaluationChunk,
    TierEvaluationRun,
    TierHistory,
    TierOverride,
)
from members.signals import member_closed
from members.tier_sql import TIER_STATE_LOCK, evaluate_sql, simulate_sql

MEMBER_FIELDS = (
    "name",
    "gender",
    "birth_date",
    "phone",
    "email",
    "occupation",
    "income_band",
    "city",
    "branch_code",
    "credit_grade",
    "risk_level",
    "marketing_consent",
    "preferred_language",
    "joined_at",
)
SNAPSHOT_AMOUNTS = ("deposits", "wealth", "funds", "insurance", "loans", "contribution")


def _profile(member: Member) -> dict[str, Any]:
    return model_to_dict(member, fields=(*MEMBER_FIELDS, "status"))


@transaction.atomic
def member_upsert(*, customer_no: str, actor: Any, **fields: Any) -> tuple[Member, bool]:
    """Create the member or update the given fields (the CRM may send only what changed).

    A ``status`` in ``fields`` goes through :func:`member_freeze`, :func:`member_unfreeze` or
    :func:`member_close`, so a status change has the same effects however it arrives.
    Returns ``(member, created)``.
    """
    status = fields.pop("status", None)
    unknown = set(fields) - set(MEMBER_FIELDS)
    if unknown:
        raise TypeError(f"member_upsert() got unknown fields: {sorted(unknown)}")
    member = Member.objects.select_for_update().filter(customer_no=customer_no).first()
    created = member is None
    if member is None:  # ``created``; spelled out so type checkers narrow ``member``
        member = Member(customer_no=customer_no, **fields)
        member.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                member.save()
        except IntegrityError:
            # A concurrent request created it first: this one becomes an update.
            return member_upsert(customer_no=customer_no, actor=actor, status=status, **fields)
        audit_log_record(actor=actor, action="member.create", target=member, after=_profile(member))
    else:
        if member.status == Member.Status.CLOSED and (
            fields or status not in (None, member.status)
        ):
            raise MemberClosed()
        before = _profile(member)
        changed = [name for name, value in fields.items() if getattr(member, name) != value]
        for name in changed:
            setattr(member, name, fields[name])
        if changed:
            member.full_clean()
            member.save(update_fields=[*changed, "updated_at"])
            audit_log_record(
                actor=actor,
                action="member.update",
                target=member,
                before=before,
                after=_profile(member),
            )
    if status is not None and status != member.status:
        transition = {
            Member.Status.FROZEN: member_freeze,
            Member.Status.ACTIVE: member_unfreeze,
            Member.Status.CLOSED: member_close,
        }[Member.Status(status)]
        member = transition(member=member, actor=actor, reason="CRM update")
    return member, created


def _status_change(*, member: Member, actor: Any, to: str, reason: str, action: str) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.CLOSED:
        raise MemberClosed()
    if member.status == to:
        return member
    before = member.status
    member.status = to
    member.status_changed_at = timezone.now()
    member.save(update_fields=["status", "status_changed_at", "updated_at"])
    audit_log_record(
        actor=actor,
        action=action,
        target=member,
        before={"status": before},
        after={"status": to},
        reason=reason,
    )
    return member


@transaction.atomic
def member_freeze(*, member: Member, actor: Any, reason: str = "") -> Member:
    """A frozen member neither earns nor redeems until unfrozen."""
    return _status_change(
        member=member, actor=actor, to=Member.Status.FROZEN, reason=reason, action="member.freeze"
    )


@transaction.atomic
def member_unfreeze(*, member: Member, actor: Any, reason: str = "") -> Member:
    return _status_change(
        member=member, actor=actor, to=Member.Status.ACTIVE, reason=reason, action="member.unfreeze"
    )


@transaction.atomic
def member_close(*, member: Member, actor: Any, reason: str = "") -> Member:
    """Close for good. Receivers of ``member_closed`` (points) forfeit what is left, in the same
    transaction, so a closed member never keeps a balance."""
    member = _status_change(
        member=member, actor=actor, to=Member.Status.CLOSED, reason=reason, action="member.close"
    )
    member_closed.send(sender=Member, member=member, actor=actor)
    return member


def asset_snapshots_store(*, snapshots: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated snapshots in one transaction: new ones are created, a re-sent one replaces
    the stored values for its member and date (never a second row).

    Each item has ``member_id``, ``as_of`` and the amounts of :data:`SNAPSHOT_AMOUNTS`.
    Returns counts: ``created``, ``updated`` (values changed), ``unchanged`` (identical re-send).
    """
    if not snapshots:
        return {"created": 0, "updated": 0, "unchanged": 0}
    keys = {(item["member_id"], item["as_of"]) for item in snapshots}
    member_ids = {member_id for member_id, _ in keys}
    dates = {as_of for _, as_of in keys}
    now = timezone.now()
    with transaction.atomic():
        # Rows are locked and written in key order, so overlapping batches never deadlock.
        existing = {
            (row["member_id"], row["as_of"]): row
            for row in AssetSnapshot.objects.select_for_update()
            .filter(member_id__in=member_ids, as_of__in=dates)
            .order_by("member_id", "as_of")
            .values("member_id", "as_of", *SNAPSHOT_AMOUNTS)
        }
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        rows = []
        for item in sorted(snapshots, key=lambda item: (item["member_id"], item["as_of"])):
            stored = existing.get((item["member_id"], item["as_of"]))
            amounts = {name: Decimal(item.get(name) or 0) for name in SNAPSHOT_AMOUNTS}
            if stored is None:
                counts["created"] += 1
            elif all(stored[name] == amounts[name] for name in SNAPSHOT_AMOUNTS):
                counts["unchanged"] += 1
                continue
            else:
                counts["updated"] += 1
            rows.append(
                AssetSnapshot(
                    member_id=item["member_id"], as_of=item["as_of"], updated_at=now, **amounts
                )
            )
        AssetSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["member", "as_of"],
            update_fields=[*SNAPSHOT_AMOUNTS, "updated_at"],
            batch_size=1000,
        )
    return counts


def member_message_send(
    *,
    member: Member,
    kind: str,
    title: Any,
    body: Any,
    dedupe_key: str,
    data: dict[str, Any] | None = None,
) -> Message | None:
    """Write a message to ``member``, once per ``dedupe_key``; ``None`` if it already exists.

    A ``title`` or ``body`` given as a lazy translation is a template: it is rendered in the
    member's preferred language with its ``%(name)s`` placeholders filled from ``data``. A plain
    string is final text and used as it is (a ``%`` in it is just a character). Delivery through
    an outside channel happens later (``members.tasks.messages_deliver_task``), after the commit.
    """
    data = data or {}

    def render(text: Any) -> str:
        return str(text) % data if isinstance(text, Promise) and data else str(text)

    with translation.override(member.preferred_language):
        rendered_title, rendered_body = render(title), render(body)
    message, created = Message.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "member": member,
            "kind": kind,
            "title": rendered_title[:200],
            "body": rendered_body,
            "data": data,
        },
    )
    return message if created else None


def messages_mark_read(*, member: Member, message_ids: list[str]) -> int:
    return Message.objects.filter(member=member, id__in=message_ids, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def messages_deliver(*, limit: int = 500) -> int:
    """Hand pending messages to the channel named by ``MESSAGE_CHANNEL`` and mark them sent.

    Rows are claimed with ``SKIP LOCKED`` so parallel workers never send one message twice. The
    ``log`` channel (the default) writes each message to the ``members.delivery`` logger, which
    a log shipper forwards to the bank's push and SMS gateway.
    """
    import logging

    from django.conf import settings

    channel = getattr(settings, "MESSAGE_CHANNEL", "log")
    logger = logging.getLogger("members.delivery")
    with transaction.atomic():
        batch = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(delivery=Message.Delivery.PENDING)
            .select_related("member")
            .order_by("created_at")[:limit]
        )
        for message in batch:
            logger.info(
                "deliver channel=%s member=%s kind=%s title=%s",
                channel,
                message.member.customer_no,
                message.kind,
                message.title,
            )
        now = timezone.now()
        Message.objects.filter(pk__in=[m.pk for m in batch]).update(
            delivery=Message.Delivery.SENT, delivered_at=now
        )
    return len(batch)


# --- Tiers ---------------------------------------------------------------------------------

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
# 2**63 - 1: the upper end of a member id range that means "all members".
_ALL_IDS = 9_223_372_036_854_775_807


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

    The statement writes them as :func:`member_message_send` would (the member's language, one
    message per ``dedupe_key`` = run and member); calling it per member would make a run's time
    grow with the number of changes by a Python round trip each. Each template also carries
    what the message's ``data`` names (the tiers' codes, the direction), so the statement
    builds that once per template, not once per member.
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
                    action="tier_evaluation.start",
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
        audit_log_record(actor=actor, action="tier_evaluation.resume", target=run)
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


def tier_overrides_expire(*, now: dt.datetime | None = None) -> int:
    """Put members whose approved override has expired back in the tier they qualify for (as
    of the latest evaluation), with history and a message, instead of leaving them in it until
    the next monthly run. Returns how many members moved.

    Runs the evaluation's own decision for each such member (a handful a day), under the lock
    that keeps evaluation chunks out, so a run in progress cannot decide for them at the same
    time.
    """
    now = now or timezone.now()
    expired = list(
        MemberTier.objects.filter(override__isnull=False, override__expires_at__lte=now)
        .order_by("member_id")
        .values_list("member_id", "override_id")
    )
    tiers = list(Tier.objects.order_by("rank"))
    if not expired or not any(tier.active for tier in tiers):
        return 0
    last_run = (
        TierEvaluationRun.objects.filter(status=TierEvaluationRun.Status.DONE)
        .order_by("-as_of")
        .first()
    )
    as_of = last_run.as_of if last_run else tier_default_as_of()
    sql, params = evaluate_sql(tiers=[_tier_payload(t) for t in tiers], as_of=as_of)
    params["templates"] = json.dumps(_tier_change_templates(tiers=tiers, as_of=as_of))
    moved = 0
    for member_id, override_id in expired:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TIER_STATE_LOCK])
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(
                sql,
                {
                    **params,
                    "run_pk": None,
                    "run_id": f"override-{override_id}",
                    "lo": member_id - 1,
                    "hi": member_id,
                    "now": now,
                },
            )
            names = [column.name for column in cursor.description]
            counts = dict(zip(names, cursor.fetchone(), strict=True))
            moved += counts["history"]
    return moved


def tiers_simulate(
    *, as_of: dt.date | None = None, proposals: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What an evaluation as of ``as_of`` would do if the tiers had the ``proposals`` (per tier
    code: any of ``min_avg_aum``, ``min_contribution``, ``rule``, ``window_months``,
    ``grace_periods``, ``downgrade_mode``).

    Runs the evaluation's own decision SQL (grace periods, overrides and re-runs included) in a
    read-only transaction: the counts are what a run would produce, and nothing is written.
    Returns ``as_of``, ``members``, ``tiers`` (per active tier: ``members`` after the run,
    ``qualified`` on the thresholds alone) and ``moves`` (``up``, ``down``, ``same``).
    """
    as_of = as_of or tier_default_as_of()
    proposals = proposals or {}
    tiers = list(Tier.objects.order_by("rank"))
    unknown = set(proposals) - {tier.code for tier in tiers}
    if unknown:
        raise TierNotFound()
    if not any(tier.active for tier in tiers):
        raise NoActiveTiers()
    payload = [_tier_payload(tier, proposals.get(tier.code)) for tier in tiers]
    sql, params = simulate_sql(tiers=payload, as_of=as_of)
    params.update(lo=0, hi=_ALL_IDS, now=timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    after = {code: members for kind, code, members, *_ in rows if kind == "after"}
    qualified = {code: members for kind, code, members, *_ in rows if kind == "qualified"}
    moves = {"up": 0, "down": 0, "same": 0}
    for kind, _code, _members, up, down, same in rows:
        if kind == "after":
            moves["up"] += up
            moves["down"] += down
            moves["same"] += same
    return {
        "as_of": as_of,
        "members": sum(after.values()),
        "tiers": [
            {
                "code": values["code"],
                "name": tier.name,
                "rank": values["rank"],
                "min_avg_aum": values["min_avg_aum"],
                "min_contribution": values["min_contribution"],
                "rule": values["rule"],
                "members": after.get(values["code"], 0),
                "qualified": qualified.get(values["code"], 0),
            }
            for tier, values in zip(tiers, payload, strict=True)
            if values["active"]
        ],
        "moves": moves,
    }


@transaction.atomic
def tier_override_request(
    *, member: Member, tier: Tier, reason: str, expires_at: dt.datetime, actor: Any
) -> TierOverride:
    """Ask for ``member`` to hold ``tier`` until ``expires_at``; nothing changes until a
    different person approves. A member has at most one pending request."""
    if member.status == Member.Status.CLOSED:
        raise MemberClosed()
    if not tier.active:
        raise TierInactive()
    if expires_at <= timezone.now():
        raise TierOverrideExpired()
    try:
        with transaction.atomic():
            override = TierOverride.objects.create(
                member=member, tier=tier, reason=reason, expires_at=expires_at, requested_by=actor
            )
    except IntegrityError:
        raise TierOverridePending() from None
    audit_log_record(
        actor=actor,
        action="tier_override.request",
        target=member,
        after={"override": str(override.id), "tier": tier.code, "expires_at": expires_at},
        reason=reason,
    )
    return override


def _override_for_decision(*, override_id: Any, actor: Any) -> TierOverride:
    override = (
        TierOverride.objects.select_for_update()
        .select_related("member", "tier")
        .filter(id=override_id)
        .first()
    )
    if override is None:
        raise TierOverrideNotFound()
    if override.status != TierOverride.Status.PENDING:
        raise TierOverrideNotPending()
    four_eyes_check(requested_by_id=override.requested_by_id, actor=actor)
    return override


@transaction.atomic
def tier_override_approve(*, override_id: Any, actor: Any, note: str = "") -> TierOverride:
    """Approve a pending override (by someone other than the requester) and put the member in
    its tier at once, with history and a message. Evaluations keep it until it expires."""
    override = _override_for_decision(override_id=override_id, actor=actor)
    now = timezone.now()
    if override.expires_at <= now:
        raise TierOverrideExpired()
    if override.member.status == Member.Status.CLOSED:
        raise MemberClosed()
    override.status = TierOverride.Status.APPROVED
    override.decided_by = actor
    override.decided_at = now
    override.decision_note = note
    override.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    with connection.cursor() as cursor:
        # Wait for evaluation chunks in progress, so none can overwrite this change.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TIER_STATE_LOCK])
    member = override.member
    state = MemberTier.objects.select_for_update().filter(member=member).first()
    previous = state.tier if state else Tier.objects.filter(active=True).order_by("rank").first()
    if state is None:
        state = MemberTier(member=member, tier=override.tier)
    changed = previous is None or previous.pk != override.tier_id
    state.tier = override.tier
    state.override = override
    state.failing_count = 0
    state.updated_at = now
    if changed:
        state.since = now
    state.save()
    if changed:
        TierHistory.objects.create(
            member=member,
            from_tier=previous,
            to_tier=override.tier,
            reason=TierHistory.Reason.OVERRIDE,
            override=override,
            occurred_at=now,
        )
        title, body = _tier_change_text(
            language=member.preferred_language,
            previous=previous or override.tier,
            tier=override.tier,
            as_of=business_today(),
            until=business_date(override.expires_at),
        )
        member_message_send(
            member=member,
            kind=Message.Kind.TIER_CHANGE,
            title=title,
            body=body,
            dedupe_key=f"tier-override:{override.id}",
            data={
                "tier": override.tier.code,
                "previous": previous.code if previous else None,
                "until": override.expires_at,
                "direction": "override",
            },
        )
    audit_log_record(
        actor=actor,
        action="tier_override.approve",
        target=member,
        before={"tier": previous.code if previous else None},
        after={"tier": override.tier.code, "override": str(override.id)},
        reason=note or override.reason,
    )
    return override


@transaction.atomic
def tier_override_reject(*, override_id: Any, actor: Any, note: str = "") -> TierOverride:
    """Reject a pending override (by someone other than the requester); nothing else changes."""
    override = _override_for_decision(override_id=override_id, actor=actor)
    override.status = TierOverride.Status.REJECTED
    override.decided_by = actor
    override.decided_at = timezone.now()
    override.decision_note = note
    override.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_log_record(
        actor=actor,
        action="tier_override.reject",
        target=override.member,
        after={"override": str(override.id), "tier": override.tier.code},
        reason=note,
    )
    return override
