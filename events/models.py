"""Events (salons, lectures, workshops, webinars), their invitations and feedback.

The database holds the limits itself: an event's ``seats_taken`` (the seats of its accepted and
offered invitations, the row every RSVP locks) never exceeds its ``capacity``; an invitation is
unique per event and member, and its check-in code unique; feedback is one per invitation.
"""

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.translation import translated
from members.models import Member, Segment, tier_codes_check


class EventKind(models.TextChoices):
    SALON = "salon", _("Salon")
    LECTURE = "lecture", _("Lecture")
    WORKSHOP = "workshop", _("Workshop")
    WEBINAR = "webinar", _("Webinar")


def check_in_code() -> str:
    """An unguessable code for one invitation (shown as text and as a QR image)."""
    return secrets.token_urlsafe(12)


class Event(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title_en = models.CharField(_("title (English)"), max_length=200)
    title_zh_hans = models.CharField(_("title (Simplified Chinese)"), max_length=200, blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_zh_hans = models.TextField(_("description (Simplified Chinese)"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices)
    venue = models.CharField(_("venue"), max_length=200, blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    capacity = models.PositiveIntegerField(_("capacity"), validators=[MinValueValidator(1)])
    seats_taken = models.PositiveIntegerField(_("seats taken"), default=0, editable=False)
    max_seats = models.PositiveSmallIntegerField(
        _("seats per invitation"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("The member and their companions."),
    )
    rsvp_deadline = models.DateTimeField(_("RSVP deadline"))
    invite_at = models.DateTimeField(_("send invitations at"))
    offer_hold_hours = models.PositiveSmallIntegerField(
        _("offer hold (hours)"),
        default=24,
        validators=[MinValueValidator(1)],
        help_text=_("How long a freed seat is held for the waitlisted member it is offered to."),
    )
    target_tiers = models.JSONField(
        _("target tiers"), default=list, blank=True, help_text=_("Tier codes; empty means all.")
    )
    target_segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("target segment"),
        help_text=_("Members must also be in this segment (as refreshed when invitations go out)."),
    )
    attendance_points = models.PositiveIntegerField(_("attendance points"), default=0)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    invitations_sent_at = models.DateTimeField(_("invitations sent at"), null=True, blank=True)
    reminders_sent_at = models.DateTimeField(_("reminders sent at"), null=True, blank=True)
    no_shows_marked_at = models.DateTimeField(_("no-shows marked at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["starts_at"]
        indexes = [
            models.Index(
                fields=["invite_at"],
                name="events_invite_due_idx",
                condition=Q(status="published", invitations_sent_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(seats_taken__lte=F("capacity")), name="events_seats_within_capacity"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at"))
                & Q(rsvp_deadline__lte=F("starts_at"))
                & Q(invite_at__lte=F("rsvp_deadline")),
                name="events_schedule_in_order",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def title(self) -> str:
        return translated(self, "title")

    @property
    def description(self) -> str:
        return translated(self, "description")

    def clean(self) -> None:
        tier_codes_check(self.target_tiers, field="target_tiers")


class Invitation(models.Model):
    class Status(models.TextChoices):
        INVITED = "invited", _("Invited")
        ACCEPTED = "accepted", _("Accepted")
        WAITLISTED = "waitlisted", _("Waitlisted")
        OFFERED = "offered", _("Offered a seat")
        DECLINED = "declined", _("Declined")
        ATTENDED = "attended", _("Attended")
        NO_SHOW = "no_show", _("No-show")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Written in bulk by the invitation task: both references are checked once per statement
    # (loyalty.db.checked_references; events and members are never deleted).
    event = models.ForeignKey(
        Event,
        on_delete=models.PROTECT,
        related_name="invitations",
        verbose_name=_("event"),
        db_constraint=False,
    )
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="invitations",
        verbose_name=_("member"),
        db_constraint=False,
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.INVITED
    )
    seats = models.PositiveSmallIntegerField(_("seats"), default=1)
    check_in_code = models.CharField(
        _("check-in code"), max_length=32, unique=True, default=check_in_code, editable=False
    )
    invited_at = models.DateTimeField(_("invited at"), default=timezone.now)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    offer_expires_at = models.DateTimeField(_("offer expires at"), null=True, blank=True)
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["invited_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "member"], name="events_invitation_once"),
            models.CheckConstraint(condition=Q(seats__gte=1), name="events_seats_positive"),
            models.CheckConstraint(
                condition=~Q(status="offered") | Q(offer_expires_at__isnull=False),
                name="events_offer_has_expiry",
            ),
        ]
        indexes = [
            models.Index(fields=["event", "status"], name="events_invitation_status_idx"),
            models.Index(
                fields=["offer_expires_at"],
                name="events_offer_due_idx",
                condition=Q(status="offered"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} / {self.member_id} ({self.get_status_display()})"


class Feedback(models.Model):
    """An attendee's rating and NPS of an event, once."""

    invitation = models.OneToOneField(
        Invitation, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("invitation")
    )
    rating = models.PositiveSmallIntegerField(
        _("rating"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    nps = models.PositiveSmallIntegerField(
        _("NPS"), validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1, rating__lte=5) & Q(nps__gte=0, nps__lte=10),
                name="events_feedback_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invitation_id}: {self.rating}/5, NPS {self.nps}"
