import django_filters

from events.models import Event, EventKind, Invitation


class EventFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Event.Status.choices)
    kind = django_filters.ChoiceFilter(choices=EventKind.choices)

    class Meta:
        model = Event
        fields = ["status", "kind"]


class InvitationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Invitation.Status.choices)

    class Meta:
        model = Invitation
        fields = ["status"]
