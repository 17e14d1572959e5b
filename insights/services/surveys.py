"""Satisfaction surveys: one NPS question (0-10, an optional comment) sent by marketing to a
segment's members, or to every member, through the inbox; each member answers once.

What holds:

- :func:`survey_send` sends a draft survey once, however often and on however many workers it
  runs: under the survey's row lock it writes one response row per target (``ON CONFLICT DO
  NOTHING`` on survey and member) and one message per response it created (``dedupe_key``
  ``survey:<response id>``), set-based in chunks of member ids, then marks the survey sent, all
  in one transaction. Targets are active members with marketing consent, in the survey's
  segment when it names one (refreshed first, so its members are those of its rule at that
  moment). Each response keeps the member's tier when it was sent, for the KPIs per tier.
- :func:`survey_answer` records an answer once (``survey_answered`` the second time, also for
  two answers at once: the update takes only an unanswered row); a closed survey, or one past
  ``closes_at``, refuses answers (``survey_closed``). The database keeps a score and its time
  together and within 0-10.
"""

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from insights.errors import SurveyAnswered, SurveyClosed, SurveyNotDraft, SurveyNotSent
from insights.models import Survey, SurveyResponse
from loyalty.models import AuditAction
from loyalty.services import audit_log_record, audited_values
from members.models import Member
from members.segments import IN_SEGMENT_SQL
from members.selectors import tier_lowest
from members.services.segments import segment_refresh

SEND_CHUNK = 50_000

SURVEY_TITLE = _("A quick question from your bank")
SURVEY_BODY = _("%(question)s Answer from 0 (not at all likely) to 10 (extremely likely).")

_SEND_SQL = """
WITH targets AS MATERIALIZED (
    SELECT m.id AS member_id, m.preferred_language, coalesce(t.code, %(lowest)s) AS tier_code
    FROM members_member m
    LEFT JOIN members_membertier mt ON mt.member_id = m.id
    LEFT JOIN members_tier t ON t.id = mt.tier_id
    WHERE m.id > %(lo)s AND m.id <= %(hi)s
      AND m.status = 'active' AND m.marketing_consent
      {segment_condition}
),
sent AS (
    INSERT INTO insights_surveyresponse (id, survey_id, member_id, tier_code, sent_at, comment)
    SELECT gen_random_uuid(), %(survey)s, t.member_id, t.tier_code, %(now)s, ''
    FROM targets t
    ON CONFLICT (survey_id, member_id) DO NOTHING
    RETURNING id, member_id
),
messaged AS (
    INSERT INTO members_message (id, member_id, kind, title, body, data, dedupe_key,
                                 created_at, delivery)
    SELECT gen_random_uuid(), s.member_id, 'survey',
           CASE t.preferred_language WHEN 'en' THEN %(title_en)s ELSE %(title_zh_hans)s END,
           CASE t.preferred_language WHEN 'en' THEN %(body_en)s ELSE %(body_zh_hans)s END,
           jsonb_build_object('survey', %(survey)s::text, 'response', s.id::text),
           'survey:' || s.id::text, %(now)s, 'pending'
    FROM sent s
    JOIN targets t ON t.member_id = s.member_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM sent), (SELECT count(*) FROM messaged)
"""


@transaction.atomic
def survey_create(*, actor: Any, fields: dict[str, Any]) -> Survey:
    """A new draft survey. ``ValidationError`` for invalid values (nothing written)."""
    survey = Survey(**fields, created_by=actor if getattr(actor, "pk", None) else None)
    survey.full_clean()
    survey.save(force_insert=True)
    audit_log_record(
        actor=actor, action=AuditAction.SURVEY_CREATE, target=survey, after=audited_values(survey)
    )
    return survey


def _texts(survey: Survey) -> dict[str, str]:
    texts = {}
    for language in Member.Language.values:
        with translation.override(language):
            key = language.replace("-", "_")
            texts[f"title_{key}"] = str(SURVEY_TITLE)
            texts[f"body_{key}"] = str(SURVEY_BODY) % {"question": survey.question}
    return texts


@transaction.atomic
def survey_send(
    *, survey: Survey, actor: Any, now: dt.datetime | None = None, chunk_size: int = SEND_CHUNK
) -> dict[str, int]:
    """Send a draft survey to its targets; ``{"responses", "messages"}`` written. A survey that
    is not a draft raises :class:`SurveyNotDraft` (it was sent already)."""
    now = now or timezone.now()
    stored = Survey.objects.select_for_update().get(pk=survey.pk)
    if stored.status != Survey.Status.DRAFT:
        raise SurveyNotDraft()
    lowest = tier_lowest()
    params: dict[str, Any] = {
        "survey": stored.pk,
        "now": now,
        "lowest": lowest.code if lowest else "",
        **_texts(stored),
    }
    condition = ""
    if stored.segment is not None:
        segment_refresh(segment=stored.segment)
        params["segment"] = stored.segment.pk
        condition = IN_SEGMENT_SQL
    sql = _SEND_SQL.format(segment_condition=condition)
    totals = {"responses": 0, "messages": 0}
    bounds = Member.objects.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is not None:
        with connection.cursor() as cursor:
            for lo in range(bounds["first"] - 1, bounds["last"], chunk_size):
                hi = min(lo + chunk_size, bounds["last"])
                cursor.execute(sql, {**params, "lo": lo, "hi": hi})
                responses, messages = cursor.fetchone()
                totals["responses"] += responses
                totals["messages"] += messages
    stored.status = Survey.Status.SENT
    stored.sent_at = now
    stored.save(update_fields=["status", "sent_at"])
    audit_log_record(
        actor=actor,
        action=AuditAction.SURVEY_SEND,
        target=stored,
        before={"status": Survey.Status.DRAFT},
        after={"status": Survey.Status.SENT, **totals},
    )
    survey.status, survey.sent_at = stored.status, stored.sent_at
    return totals


@transaction.atomic
def survey_close(*, survey: Survey, actor: Any) -> Survey:
    """No more answers (:class:`SurveyNotSent` for a draft). Closing a closed survey changes
    nothing."""
    stored = Survey.objects.select_for_update().get(pk=survey.pk)
    if stored.status == Survey.Status.CLOSED:
        return stored
    if stored.status == Survey.Status.DRAFT:
        raise SurveyNotSent()
    before = stored.status
    stored.status = Survey.Status.CLOSED
    stored.save(update_fields=["status"])
    audit_log_record(
        actor=actor,
        action=AuditAction.SURVEY_CLOSE,
        target=stored,
        before={"status": before},
        after={"status": stored.status},
    )
    return stored


def survey_answer(
    *, response: SurveyResponse, score: int, comment: str = "", now: dt.datetime | None = None
) -> SurveyResponse:
    """Record the member's answer once (:class:`SurveyAnswered` the second time)."""
    now = now or timezone.now()
    if not response.survey.is_open(now):
        raise SurveyClosed()
    answered = SurveyResponse.objects.filter(pk=response.pk, answered_at__isnull=True).update(
        score=score, comment=comment, answered_at=now
    )
    if not answered:
        raise SurveyAnswered()
    response.refresh_from_db()
    return response
