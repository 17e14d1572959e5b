"""Insights: KPI snapshots per month, the nightly recommendations, satisfaction surveys.

Figures are computed by ``insights.services`` from the other apps' tables, set-based; the rows
here are what those computations keep so that history and the member's API stay fast.
"""

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.translation import translated
from members.models import Member, Segment


class KpiSnapshot(models.Model):
    """The KPIs of one calendar month, overall (``tier_code`` empty) or for one tier, as the
    monthly task computed them. ``figures`` holds the keys of the KPI endpoint (decimals as
    strings)."""

    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    tier_code = models.CharField(_("tier"), max_length=32, blank=True)
    figures = models.JSONField(_("figures"), encoder=DjangoJSONEncoder)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("KPI snapshot")
        verbose_name_plural = _("KPI snapshots")
        ordering = ["-month", "tier_code"]
        constraints = [
            models.UniqueConstraint(fields=["month", "tier_code"], name="kpi_snapshot_month_uniq"),
            models.CheckConstraint(
                condition=models.Q(month__day=1), name="kpi_snapshot_month_first_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.tier_code or '*'}"


# jsonpath: ``items`` is an array, and every element names its type (reward or event), id, score
# and reason.
RECOMMENDATION_ITEMS_WELL_FORMED = (
    '$.type() == "array" && !(exists($[*] ? ('
    '!(@.type == "reward" || @.type == "event") || !(exists(@.id)) || !(exists(@.score))'
    " || !(exists(@.reason)))))"
)


class RecommendationRun(models.Model):
    """One run of the nightly recommendation job."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.RUNNING
    )
    members = models.PositiveIntegerField(_("members"), default=0)
    items = models.PositiveIntegerField(_("items"), default=0)
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout share (%)"), default=10, validators=[MaxValueValidator(100)]
    )

    class Meta:
        verbose_name = _("recommendation run")
        verbose_name_plural = _("recommendation runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.status}"


class Recommendation(models.Model):
    """A member's ranked items from the latest run, best first, in one row: ``items`` is a
    JSON list of ``{"type": "reward"|"event", "id": uuid, "score": decimal string,
    "reason": a Reason code, "data": what fills its text}``."""

    class ItemType(models.TextChoices):
        REWARD = "reward", _("Reward")
        EVENT = "event", _("Event")

    class Reason(models.TextChoices):
        POPULAR_IN_TIER = "popular_in_tier", _("Popular with members of your tier")
        POPULAR_IN_SEGMENT = "popular_in_segment", _("Popular with members like you")
        SPENDING_CATEGORY = "spending_category", _("Because you spend on %(category)s")
        HISTORY = "history", _("Like what you chose before")
        POPULAR = "popular", _("Popular with members")

    member = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("member"),
    )
    run = models.ForeignKey(
        RecommendationRun,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("run"),
        db_index=False,
    )
    holdout = models.BooleanField(
        _("holdout"), default=False, help_text=_("The member gets popularity only.")
    )
    items = models.JSONField(_("items"), default=list)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("recommendation")
        verbose_name_plural = _("recommendations")
        ordering = ["member"]
        constraints = [
            # A list of items, each a reward or an event with an id, a score and a reason.
            models.CheckConstraint(
                condition=models.lookups.Exact(
                    models.Func(
                        models.F("items"),
                        models.Value(RECOMMENDATION_ITEMS_WELL_FORMED),
                        function="jsonb_path_match",
                        output_field=models.BooleanField(),
                    ),
                    True,
                ),
                name="recommendation_items_well_formed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} ({len(self.items or [])} items)"


class Survey(models.Model):
    """A one-question NPS survey (0-10, an optional comment) sent to a segment's members (or to
    every active member with marketing consent) through the inbox, answered once each."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent")
        CLOSED = "closed", _("Closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    question_en = models.CharField(_("question (English)"), max_length=200)
    question_zh_hans = models.CharField(
        _("question (Simplified Chinese)"), max_length=200, blank=True
    )
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("segment"),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.DRAFT
    )
    closes_at = models.DateTimeField(_("closes at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(sent_at__isnull=False),
                name="survey_sent_has_sent_at",
            ),
        ]

    def __str__(self) -> str:
        return self.question

    @property
    def question(self) -> str:
        return translated(self, "question")

    def is_open(self, now=None) -> bool:
        """Answers are taken: sent, not closed, and not past ``closes_at``."""
        now = now or timezone.now()
        return self.status == self.Status.SENT and not (self.closes_at and now > self.closes_at)


class SurveyResponse(models.Model):
    """A survey sent to one member (once), answered at most once: ``score`` and ``answered_at``
    are set together; ``tier_code`` is the member's tier when the survey was sent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    survey = models.ForeignKey(
        Survey, on_delete=models.PROTECT, related_name="responses", verbose_name=_("survey")
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="+", verbose_name=_("member")
    )
    tier_code = models.CharField(_("tier"), max_length=32, blank=True)
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    score = models.PositiveSmallIntegerField(
        _("score"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(10)],
    )
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "member"], name="survey_response_uniq"),
            models.CheckConstraint(
                condition=models.Q(score__isnull=True, answered_at__isnull=True)
                | models.Q(score__gte=0, score__lte=10, answered_at__isnull=False),
                name="survey_response_answered_together",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-sent_at"], name="survey_response_member_idx"),
            models.Index(
                fields=["answered_at"],
                name="survey_response_answered_idx",
                condition=models.Q(answered_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.survey_id} {self.member_id} {self.score}"
