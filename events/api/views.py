"""Events API: a member's invitations (answer, calendar file, check-in QR, feedback) and the
events marketing schedules (create, change, publish, cancel, invitations with their figures,
check-in at the door)."""

import icalendar
import segno
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from events.errors import (
    CheckInClosed,
    EventNotFound,
    FeedbackGiven,
    InvalidSeats,
    InvitationNotFound,
    NotAttended,
    RsvpClosed,
)
from events.filters import EventFilter, InvitationFilter
from events.models import Event, EventKind, Invitation
from events.selectors import (
    event_figures,
    event_get,
    event_invitations,
    event_list,
    member_invitation_get,
    member_invitations,
)
from events.services.attendance import feedback_submit, invitation_check_in
from events.services.events import event_cancel, event_create, event_publish, event_update
from events.services.rsvp import ACCEPT, DECLINE, invitation_rsvp
from loyalty.api.permissions import HasRolePermission, IsMember
from loyalty.api.schema import nested_components, problems
from loyalty.api.serializers import StrictSerializer
from members.api.segments import SegmentRefField


class EventBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=EventKind.choices)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    venue = serializers.CharField()


class MyInvitationOutputSerializer(serializers.Serializer):
    """One of my invitations. ``check_in_code`` only while accepted (show it, or its QR image,
    at the door); ``offer_expires_at`` while a freed seat is held for me."""

    id = serializers.UUIDField()
    event = EventBriefSerializer()
    status = serializers.ChoiceField(choices=Invitation.Status.choices)
    seats = serializers.IntegerField()
    check_in_code = serializers.SerializerMethodField()
    offer_expires_at = serializers.DateTimeField(allow_null=True)
    answered_at = serializers.DateTimeField(allow_null=True)

    def get_check_in_code(self, invitation: Invitation) -> str | None:
        return invitation.check_in_code if invitation.status == "accepted" else None


@extend_schema(tags=["me"])
@nested_components
class MeInvitationListApi(generics.ListAPIView):
    """My invitations, soonest event first; filter ``status``."""

    permission_classes = [IsMember]
    OutputSerializer = MyInvitationOutputSerializer
    serializer_class = OutputSerializer
    queryset = Invitation.objects.none()  # the model, for the schema; rows: the selector
    filterset_class = InvitationFilter
    ordering_fields: list[str] = []

    def get_queryset(self):
        return member_invitations(member=self.request.user.member)


@extend_schema(tags=["me"])
@nested_components
class MeInvitationRsvpApi(APIView):
    """Answer my invitation: ``accept`` (``seats``: me and my companions; confirmed, or
    waitlisted when full; accepting an ``offered`` seat confirms it) or ``decline`` (a seat I
    held goes to the waitlist). 409 ``rsvp_closed`` past the deadline or for a cancelled event."""

    permission_classes = [IsMember]

    class InputSerializer(StrictSerializer):
        response = serializers.ChoiceField(choices=[ACCEPT, DECLINE])
        seats = serializers.IntegerField(min_value=1, max_value=10, default=1)

    OutputSerializer = MyInvitationOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **problems(InvitationNotFound, InvalidSeats, RsvpClosed),
        },
    )
    def post(self, request, invitation_id):
        invitation = member_invitation_get(member=request.user.member, invitation_id=invitation_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invitation = invitation_rsvp(
            invitation=invitation, response=data["response"], seats=data["seats"]
        )
        invitation.event = event_get(event_id=invitation.event_id)
        return Response(self.OutputSerializer(invitation).data)


def _accepted(request, invitation_id) -> Invitation:
    invitation = member_invitation_get(member=request.user.member, invitation_id=invitation_id)
    if invitation.status != Invitation.Status.ACCEPTED:
        raise CheckInClosed()
    return invitation


@extend_schema(tags=["me"])
class MeInvitationCalendarApi(APIView):
    """The event of my accepted invitation as an iCalendar file (``text/calendar``)."""

    permission_classes = [IsMember]

    @extend_schema(
        responses={
            (200, "text/calendar"): OpenApiResponse(OpenApiTypes.STR),
            **problems(InvitationNotFound, CheckInClosed),
        },
    )
    def get(self, request, invitation_id):
        invitation = _accepted(request, invitation_id)
        event = invitation.event
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//Bank loyalty programme//events//EN")
        calendar.add("version", "2.0")
        entry = icalendar.Event()
        entry.add("uid", f"{invitation.pk}@loyalty")
        entry.add("dtstamp", event.updated_at)
        entry.add("dtstart", event.starts_at)
        entry.add("dtend", event.ends_at)
        entry.add("summary", event.title)
        entry.add("location", event.venue)
        entry.add("description", event.description)
        calendar.add_component(entry)
        response = HttpResponse(calendar.to_ical(), content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="event-{event.pk}.ics"'
        return response


@extend_schema(tags=["me"])
@nested_components
class MeInvitationQrApi(APIView):
    """The check-in code of my accepted invitation, also as a QR image (an SVG document) to
    show at the door."""

    permission_classes = [IsMember]

    class OutputSerializer(serializers.Serializer):
        check_in_code = serializers.CharField()
        qr_svg = serializers.CharField(help_text="An SVG document of the code's QR symbol.")

    @extend_schema(responses={200: OutputSerializer, **problems(InvitationNotFound, CheckInClosed)})
    def get(self, request, invitation_id):
        invitation = _accepted(request, invitation_id)
        svg = segno.make(invitation.check_in_code, error="m").svg_inline(scale=6)
        return Response(
            self.OutputSerializer({"check_in_code": invitation.check_in_code, "qr_svg": svg}).data
        )


@extend_schema(tags=["me"])
@nested_components
class MeInvitationFeedbackApi(APIView):
    """My feedback on an event I attended, once: 409 ``not_attended`` for anyone else, 409
    ``feedback_given`` the second time."""

    permission_classes = [IsMember]

    class InputSerializer(StrictSerializer):
        rating = serializers.IntegerField(min_value=1, max_value=5)
        nps = serializers.IntegerField(min_value=0, max_value=10)
        comment = serializers.CharField(
            max_length=2000, required=False, allow_blank=True, default=""
        )

    class OutputSerializer(serializers.Serializer):
        rating = serializers.IntegerField()
        nps = serializers.IntegerField()
        comment = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **problems(InvitationNotFound, NotAttended, FeedbackGiven),
        },
    )
    def post(self, request, invitation_id):
        invitation = member_invitation_get(member=request.user.member, invitation_id=invitation_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feedback = feedback_submit(invitation=invitation, **serializer.validated_data)
        return Response(self.OutputSerializer(feedback).data, status=status.HTTP_201_CREATED)


class EventInputSerializer(StrictSerializer):
    """An event as marketing writes it (``PATCH``: any subset). ``title`` and ``description``
    are the English texts, ``*_zh_hans`` the Simplified Chinese ones."""

    title = serializers.CharField(max_length=200, source="title_en")
    title_zh_hans = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, source="description_en")
    description_zh_hans = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=EventKind.choices)
    venue = serializers.CharField(max_length=200, required=False, allow_blank=True)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    capacity = serializers.IntegerField(min_value=1, max_value=100_000)
    max_seats = serializers.IntegerField(min_value=1, max_value=10, required=False)
    rsvp_deadline = serializers.DateTimeField()
    invite_at = serializers.DateTimeField()
    offer_hold_hours = serializers.IntegerField(min_value=1, max_value=720, required=False)
    target_tiers = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=50
    )
    target_segment = SegmentRefField(required=False)
    attendance_points = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)


class EventOutputSerializer(serializers.ModelSerializer):
    title = serializers.CharField()
    description = serializers.CharField()

    class Meta:
        model = Event
        fields = [
            "id",
            "title",
            "title_en",
            "title_zh_hans",
            "description",
            "kind",
            "venue",
            "starts_at",
            "ends_at",
            "capacity",
            "seats_taken",
            "max_seats",
            "rsvp_deadline",
            "invite_at",
            "offer_hold_hours",
            "target_tiers",
            "target_segment",
            "attendance_points",
            "status",
            "invitations_sent_at",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema(tags=["events"])
@nested_components
class EventListCreateApi(generics.ListAPIView):
    """Marketing: events, soonest first (filters ``status``, ``kind``); ``POST`` creates a draft."""

    permission_classes = [HasRolePermission]
    required_permissions = {"GET": ("events.view_event",), "POST": ("events.add_event",)}
    InputSerializer = EventInputSerializer
    OutputSerializer = EventOutputSerializer
    serializer_class = OutputSerializer
    queryset = Event.objects.none()  # the model, for the schema; rows: the selector
    filterset_class = EventFilter
    ordering_fields = ["starts_at", "created_at"]
    ordering = ["starts_at"]

    def get_queryset(self):
        return event_list()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_create(actor=request.user, fields=dict(serializer.validated_data))
        return Response(self.OutputSerializer(event).data, status=status.HTTP_201_CREATED)


class EventFiguresSerializer(serializers.Serializer):
    invited = serializers.IntegerField()
    accepted = serializers.IntegerField()
    waitlisted = serializers.IntegerField()
    offered = serializers.IntegerField()
    declined = serializers.IntegerField()
    attended = serializers.IntegerField()
    no_show = serializers.IntegerField()
    feedback = serializers.IntegerField()
    rating_avg = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    nps_avg = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)


class EventDetailOutputSerializer(EventOutputSerializer):
    """An event with its figures: invitations per status, feedback count, average rating and
    NPS."""

    figures = serializers.SerializerMethodField()

    class Meta(EventOutputSerializer.Meta):
        fields = [*EventOutputSerializer.Meta.fields, "figures"]
        read_only_fields = fields

    @extend_schema_field(EventFiguresSerializer)
    def get_figures(self, event: Event) -> dict:
        return EventFiguresSerializer(event_figures(event=event)).data


@extend_schema(tags=["events"])
@nested_components
class EventDetailApi(APIView):
    """Marketing: one event with its figures; ``PATCH`` changes the fields sent (capacity never
    below the seats taken)."""

    permission_classes = [HasRolePermission]
    required_permissions = {"GET": ("events.view_event",), "PATCH": ("events.change_event",)}
    InputSerializer = EventInputSerializer

    OutputSerializer = EventDetailOutputSerializer

    @extend_schema(responses={200: OutputSerializer, **problems(EventNotFound)})
    def get(self, request, event_id):
        return Response(self.OutputSerializer(event_get(event_id=event_id)).data)

    @extend_schema(
        request=InputSerializer(partial=True),
        responses={200: OutputSerializer, **problems(EventNotFound, RsvpClosed)},
    )
    def patch(self, request, event_id):
        event = event_get(event_id=event_id)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        event = event_update(
            event=event, actor=request.user, changes=dict(serializer.validated_data)
        )
        return Response(self.OutputSerializer(event).data)


@nested_components
class _EventStepApi(APIView):
    """Publish and cancel share their answer; each names its service."""

    permission_classes = [HasRolePermission]
    required_permissions = ("events.change_event",)
    OutputSerializer = EventOutputSerializer


@extend_schema(tags=["events"])
class EventPublishApi(_EventStepApi):
    """Schedule the invitations: sent at ``invite_at`` (at once if it has passed) to every
    targeted active member with marketing consent. Publishing twice changes nothing."""

    @extend_schema(
        request=None, responses={200: EventOutputSerializer, **problems(EventNotFound, RsvpClosed)}
    )
    def post(self, request, event_id):
        event = event_publish(event=event_get(event_id=event_id), actor=request.user)
        return Response(self.OutputSerializer(event).data)


@extend_schema(tags=["events"])
class EventCancelApi(_EventStepApi):
    """Cancel the event: every invited member is told, answers close."""

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        request=InputSerializer, responses={200: EventOutputSerializer, **problems(EventNotFound)}
    )
    def post(self, request, event_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_cancel(
            event=event_get(event_id=event_id),
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(self.OutputSerializer(event).data)


class EventInvitationOutputSerializer(serializers.ModelSerializer):
    customer_no = serializers.CharField(source="member.customer_no")
    member_name = serializers.CharField(source="member.name")

    class Meta:
        model = Invitation
        fields = [
            "id",
            "customer_no",
            "member_name",
            "status",
            "seats",
            "invited_at",
            "answered_at",
            "offer_expires_at",
            "checked_in_at",
        ]
        read_only_fields = fields


@extend_schema(tags=["events"])
@nested_components
class EventInvitationListApi(generics.ListAPIView):
    """Marketing: an event's invitations (filter ``status``); the event's figures are on
    ``GET /events/{event_id}/``."""

    permission_classes = [HasRolePermission]
    required_permissions = ("events.view_invitation",)
    OutputSerializer = EventInvitationOutputSerializer
    serializer_class = OutputSerializer
    queryset = Invitation.objects.none()  # the model, for the schema; rows: the selector
    filterset_class = InvitationFilter
    ordering_fields: list[str] = []

    def get_queryset(self):
        return event_invitations(event=event_get(event_id=self.kwargs["event_id"]))


@extend_schema(tags=["events"])
@nested_components
class EventCheckInApi(APIView):
    """At the door: the invitation's code (typed or scanned from its QR image) records the
    attendance once and awards the event's points once; a code not of this event is 404."""

    permission_classes = [HasRolePermission]
    required_permissions = ("events.change_invitation",)

    class InputSerializer(StrictSerializer):
        code = serializers.CharField(max_length=64)

    OutputSerializer = EventInvitationOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **problems(EventNotFound, InvitationNotFound, CheckInClosed),
        },
    )
    def post(self, request, event_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = invitation_check_in(
            event=event_get(event_id=event_id), code=serializer.validated_data["code"]
        )
        return Response(self.OutputSerializer(invitation).data)
