from django.urls import path

from events.api.views import (
    EventCancelApi,
    EventCheckInApi,
    EventDetailApi,
    EventInvitationListApi,
    EventListCreateApi,
    EventPublishApi,
    MeInvitationCalendarApi,
    MeInvitationFeedbackApi,
    MeInvitationListApi,
    MeInvitationQrApi,
    MeInvitationRsvpApi,
)

urlpatterns = [
    path("me/invitations/", MeInvitationListApi.as_view(), name="me-invitations"),
    path(
        "me/invitations/<uuid:invitation_id>/rsvp/",
        MeInvitationRsvpApi.as_view(),
        name="me-invitation-rsvp",
    ),
    path(
        "me/invitations/<uuid:invitation_id>/calendar.ics",
        MeInvitationCalendarApi.as_view(),
        name="me-invitation-calendar",
    ),
    path(
        "me/invitations/<uuid:invitation_id>/qr/",
        MeInvitationQrApi.as_view(),
        name="me-invitation-qr",
    ),
    path(
        "me/invitations/<uuid:invitation_id>/feedback/",
        MeInvitationFeedbackApi.as_view(),
        name="me-invitation-feedback",
    ),
    path("events/", EventListCreateApi.as_view(), name="events"),
    path("events/<uuid:event_id>/", EventDetailApi.as_view(), name="event"),
    path("events/<uuid:event_id>/publish/", EventPublishApi.as_view(), name="event-publish"),
    path("events/<uuid:event_id>/cancel/", EventCancelApi.as_view(), name="event-cancel"),
    path(
        "events/<uuid:event_id>/invitations/",
        EventInvitationListApi.as_view(),
        name="event-invitations",
    ),
    path("events/<uuid:event_id>/check-in/", EventCheckInApi.as_view(), name="event-check-in"),
]
