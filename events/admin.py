"""Events in the staff console: every save goes through ``events.services.events`` (validated,
audited); publishing and cancelling are actions; invitations and feedback are read-only records
with the event's figures shown on its page."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminTextareaWidget

from events.models import Event, Feedback, Invitation
from events.selectors import event_figures
from events.services.events import event_cancel, event_create, event_publish, event_update
from loyalty.admin import (
    CONFIRM_LIST_LIMIT,
    ConsoleAdmin,
    ReadOnlyAdmin,
    confirmation_page,
    confirmed,
    dialog_done,
)
from loyalty.errors import LoyaltyError
from members.forms import TierCodesField

# The event's figures (events.selectors.event_figures) as staff read them.
FIGURE_LABELS = {
    "invited": _("Invitations sent"),
    **{status.value: status.label for status in Invitation.Status if status.value != "invited"},
    "feedback": _("Feedback"),
    "rating_avg": _("Average rating"),
    "nps_avg": _("Average NPS score"),
}


class EventForm(forms.ModelForm):
    target_tiers = TierCodesField(help_text=_("None chosen: members of every tier are invited."))

    class Meta:
        model = Event
        exclude: list[str] = []  # every field: the admin's own options choose what shows


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=500, widget=UnfoldAdminTextareaWidget)


class ReasonDialogForm(BaseDialogForm, ReasonForm):
    pass


@admin.register(Event)
class EventAdmin(ConsoleAdmin):
    form = EventForm
    list_display = ["title", "kind", "starts_at", "capacity", "seats_taken", "status"]
    list_filter = ["status", "kind"]
    search_fields = ["title_en", "title_zh_hans", "venue"]
    date_hierarchy = "starts_at"
    readonly_fields = [
        "status",
        "seats_taken",
        "invitations_sent_at",
        "reminders_sent_at",
        "no_shows_marked_at",
        "created_by",
        "figures",
        "invitations",
    ]
    autocomplete_fields = ["target_segment"]
    actions = ["publish", "cancel"]
    actions_detail = ["publish_event", "cancel_event"]

    @admin.display(description=_("title"), ordering="title_en")
    def title(self, event: Event) -> str:
        return event.title

    @admin.display(description=_("invitations"))
    def invitations(self, event: Event) -> str:
        """A link to the event's invitations (hundreds for a large event: their own list,
        filtered and paged, rather than rows on this page)."""
        if event._state.adding:
            return "-"
        url = reverse("admin:events_invitation_changelist")
        return format_html(
            '<a href="{}?event__id__exact={}">{}</a>', url, event.pk, _("Open the invitations")
        )

    @admin.display(description=_("figures"))
    def figures(self, event: Event) -> str:
        if event._state.adding:
            return "-"
        if not hasattr(event, "_figures"):  # the page shows the field more than once
            event._figures = event_figures(event=event)  # type: ignore[attr-defined]
        figures = event._figures  # type: ignore[attr-defined]
        return " · ".join(
            f"{label}: {'-' if figures[name] is None else figures[name]}"
            for name, label in FIGURE_LABELS.items()
        )

    def save_model(self, request, obj: Event, form, change: bool) -> None:
        """Through the service; the form has run the model's validation already, so what is
        left to refuse here (a race with seats taken meanwhile) is shown as a form error would
        be, and nothing is written."""
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            saved = event_update(event=obj, actor=request.user, changes=fields)
        else:
            fields = {name: form.cleaned_data[name] for name in form.cleaned_data}
            saved = event_create(actor=request.user, fields=fields)
        obj.pk = saved.pk

    def has_change_permission(self, request, obj=None) -> bool:
        if isinstance(obj, Event) and obj.status == Event.Status.CANCELLED:
            return False  # a cancelled event is history
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # cancel instead: invitations and feedback name the event

    def get_actions_detail(self, request, object_id):
        """Publish only a draft, cancel only what is not cancelled yet."""
        status = Event.objects.filter(pk=object_id).values_list("status", flat=True).first()
        wanted = {
            Event.Status.DRAFT: {"publish", "cancel"},
            Event.Status.PUBLISHED: {"cancel"},
        }.get(status, set())
        return [
            action
            for action in super().get_actions_detail(request, object_id)
            if action.path in wanted
        ]

    @action(
        description=_("Publish"),
        url_path="publish",
        permissions=["change"],
        dialog={
            "title": _("Publish this event?"),
            "description": _(
                "The invitations go out at the event's invite time to the members it targets."
            ),
            "form_class": BaseDialogForm,
            "form_submit_text": _("Publish"),
        },
    )
    def publish_event(self, request, form, object_id):
        event = get_object_or_404(Event, pk=object_id)
        self._each(request, [event], lambda event: event_publish(event=event, actor=request.user))
        return dialog_done(request, reverse("admin:events_event_change", args=[object_id]))

    @action(
        description=_("Cancel the event"),
        url_path="cancel",
        permissions=["change"],
        dialog={
            "title": _("Cancel this event?"),
            "description": _(
                "Everyone invited is told it is cancelled and answers close. This cannot be undone."
            ),
            "form_class": ReasonDialogForm,
            "form_submit_text": _("Cancel the event"),
        },
    )
    def cancel_event(self, request, form, object_id):
        event = get_object_or_404(Event, pk=object_id)
        reason = form.cleaned_data["reason"]
        self._each(
            request,
            [event],
            lambda event: event_cancel(event=event, actor=request.user, reason=reason),
        )
        return dialog_done(request, reverse("admin:events_event_change", args=[object_id]))

    @admin.action(
        description=_("Publish: send the invitations at their time"), permissions=["change"]
    )
    def publish(self, request, queryset):
        if not confirmed(request):
            return self._confirmation(
                request,
                queryset,
                action_name="publish",
                intro=_("Publish these events? Their invitations go out at their invite time."),
                submit=_("Publish"),
            )
        self._each(request, queryset, lambda event: event_publish(event=event, actor=request.user))
        return None

    @admin.action(description=_("Cancel and tell everyone invited"), permissions=["change"])
    def cancel(self, request, queryset):
        form = ReasonForm(request.POST if confirmed(request) else None)
        if not form.is_valid():
            return self._confirmation(
                request,
                queryset,
                action_name="cancel",
                intro=_("Cancel these events and tell everyone invited? This cannot be undone."),
                submit=_("Cancel the events"),
                form=form,
                danger=True,
            )
        reason = form.cleaned_data["reason"]
        self._each(
            request,
            queryset,
            lambda event: event_cancel(event=event, actor=request.user, reason=reason),
        )
        return None

    def _confirmation(self, request, queryset, **page):
        return confirmation_page(
            request,
            self,
            title=_("Confirm"),
            rows=[self._describe(event) for event in queryset[:CONFIRM_LIST_LIMIT]],
            count=queryset.count(),
            back=request.get_full_path(),
            **page,
        )

    @staticmethod
    def _describe(event: Event) -> str:
        return _("%(title)s, %(starts)s: %(status)s, %(seats)s seats taken") % {
            "title": event.title,
            "starts": date_format(timezone.localtime(event.starts_at), "DATETIME_FORMAT"),
            "status": event.get_status_display(),
            "seats": event.seats_taken,
        }

    def _each(self, request, events, step) -> None:
        done = 0
        for event in events:
            try:
                step(event)
                done += 1
            except LoyaltyError as error:
                self.message_user(request, f"{event}: {error.detail}", messages.WARNING)
        self.message_user(request, _("%(count)s events updated.") % {"count": done})


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["event", "member", "status", "seats", "answered_at", "checked_in_at"]
    list_filter = ["status", "event"]
    search_fields = ["member__customer_no", "member__name"]
    list_select_related = ["event", "member"]
    exclude = ["check_in_code"]


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["invitation", "rating", "nps", "created_at"]
    list_filter = ["rating"]
    list_select_related = ["invitation__event", "invitation__member"]
