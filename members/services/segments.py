"""Segments: created and changed by marketing (each change audited), previewed before saving,
their membership refreshed set-based.

What holds:

- A rule is stored only in its clean form (``members.segments.segment_rule_clean``); a refused
  rule writes nothing.
- :func:`segment_refresh` makes the stored membership exactly the members the rule selects at
  that moment, in one statement (members who no longer match leave, new ones join, the rest are
  untouched) under the segment's row lock, and stores the count and the time with it: two
  refreshes of one segment never interleave, and a refresh never shows half a membership.
- Saving a segment whose rule changed refreshes it in the same transaction, so its count is
  never that of an older rule. :func:`segments_refresh_all` (nightly) skips a segment another
  refresh holds rather than waiting for it.
- :func:`segment_preview` counts and samples without writing anything.
"""

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from loyalty.models import AuditAction
from loyalty.services import audit_log_record, audited_changes, audited_values
from members.models import Segment
from members.segments import segment_members_sql, segment_rule_clean

PREVIEW_SAMPLE = 10

_REFRESH_SQL = """
WITH wanted AS MATERIALIZED ({members}),
left_segment AS (
    DELETE FROM members_segmentmember sm
    WHERE sm.segment_id = %(segment)s
      AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.id = sm.member_id)
    RETURNING 1
),
joined AS (
    INSERT INTO members_segmentmember (segment_id, member_id)
    SELECT %(segment)s, w.id FROM wanted w
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM wanted), (SELECT count(*) FROM joined),
       (SELECT count(*) FROM left_segment)
"""


def segment_preview(*, rule: Any) -> dict[str, Any]:
    """How many active members ``rule`` selects, and the first few by customer number
    (customer number, tier code, city and branch: no names or contact data).
    ``ValidationError`` for a bad rule."""
    members, params = segment_members_sql(segment_rule_clean(rule))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({members}) x", params)  # noqa: S608 - the rule's
        (count,) = cursor.fetchone()
        cursor.execute(
            f"""
            SELECT m.customer_no, coalesce(t.code, lowest.code), m.city, m.branch_code
            -- the rule's own SQL (members.segments), its values bound
            FROM members_member m
            LEFT JOIN members_membertier mt ON mt.member_id = m.id
            LEFT JOIN members_tier t ON t.id = mt.tier_id
            LEFT JOIN LATERAL (SELECT code FROM members_tier WHERE active
                               ORDER BY rank LIMIT 1) lowest ON true
            WHERE m.id IN ({members})
            ORDER BY m.customer_no
            LIMIT %(sample)s
            """,  # noqa: S608
            {**params, "sample": PREVIEW_SAMPLE},
        )
        sample = [
            {"customer_no": no, "tier": tier, "city": city, "branch_code": branch}
            for no, tier, city, branch in cursor.fetchall()
        ]
    return {"member_count": count, "sample": sample}


def _refresh_locked(segment: Segment) -> dict[str, int]:
    """Refresh ``segment``, whose row the caller holds."""
    members, params = segment_members_sql(segment.rule)
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH_SQL.format(members=members), {**params, "segment": segment.pk})
        count, joined, left = cursor.fetchone()
    segment.member_count = count
    segment.refreshed_at = timezone.now()
    segment.save(update_fields=["member_count", "refreshed_at", "updated_at"])
    return {"members": count, "joined": joined, "left": left}


@transaction.atomic
def segment_refresh(*, segment: Segment) -> dict[str, int]:
    """Refresh one segment's membership (waits for another refresh of it to finish)."""
    stored = Segment.objects.select_for_update().get(pk=segment.pk)
    totals = _refresh_locked(stored)
    segment.member_count, segment.refreshed_at = stored.member_count, stored.refreshed_at
    return totals


def segments_refresh_all() -> dict[str, int]:
    """Refresh every segment, each in its own transaction; one being refreshed is skipped."""
    totals = {"segments": 0, "members": 0}
    for segment_id in list(Segment.objects.order_by("name_en").values_list("pk", flat=True)):
        with transaction.atomic():
            segment = Segment.objects.select_for_update(skip_locked=True).filter(pk=segment_id)
            stored = segment.first()
            if stored is None:
                continue
            totals["members"] += _refresh_locked(stored)["members"]
            totals["segments"] += 1
    return totals


@transaction.atomic
def segment_create(*, actor: Any, rule: Any, **fields: Any) -> Segment:
    """A new segment (``fields``: ``name_en``, ``name_zh_hans``, ``description_en``,
    ``description_zh_hans``), its membership refreshed. ``ValidationError`` for a bad rule or
    name."""
    segment = Segment(
        **fields,
        rule=segment_rule_clean(rule),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    segment.full_clean()
    segment.save(force_insert=True)
    _refresh_locked(segment)
    audit_log_record(
        actor=actor,
        action=AuditAction.SEGMENT_CREATE,
        target=segment,
        after=audited_values(segment),
    )
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, actor: Any, changes: dict[str, Any]) -> Segment:
    """Apply ``changes`` (the names, descriptions and ``rule``) under the segment's row lock;
    a changed rule refreshes the membership."""
    stored = Segment.objects.select_for_update().get(pk=segment.pk)
    values = audited_values(stored)
    for name, value in changes.items():
        setattr(stored, name, segment_rule_clean(value) if name == "rule" else value)
    stored.full_clean()
    before, after = audited_changes(values, audited_values(stored))
    if after:
        stored.save(update_fields=[*after, "updated_at"])
        if "rule" in after:
            _refresh_locked(stored)
        audit_log_record(
            actor=actor,
            action=AuditAction.SEGMENT_UPDATE,
            target=stored,
            before=before,
            after=after,
        )
    return stored
