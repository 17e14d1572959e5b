"""Events in the staff console: every save goes through ``events.services.events`` (validated,
audited); publishing and cancelling are actions; invitations and feedback are read-only records
with the event's figures shown on its page."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from events.models import Event, Feedback, Invitation
from events.selectors import event_figures
from events.services.events import event_cancel, event_create, event_publish, event_update
from loyalty.admin import ConsoleAdmin, ReadOnlyAdmin, TabularInline
from loyalty.errors import LoyaltyError


class InvitationInline(TabularInline):
    model = Invitation
    fields = ("member", "status", "seats", "answered_at", "checked_in_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    max_num = 0  # no adding here: invitations are sent by the scheduled task

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("member")


@admin.register(Event)
class EventAdmin(ConsoleAdmin):
    list_display = ["title_en", "kind", "starts_at", "capacity", "seats_taken", "status"]
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
    ]
    inlines = [InvitationInline]
    actions = ["publish", "cancel"]

    @admin.display(description=_("figures"))
    def figures(self, event: Event) -> str:
        if event._state.adding:
            return "-"
        figures = event_figures(event=event)
        return ", ".join(f"{name}: {value}" for name, value in figures.items())

    def save_model(self, request, obj: Event, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            if change:
                saved = event_update(event=obj, actor=request.user, changes=fields)
            else:
                fields = {name: form.cleaned_data[name] for name in form.cleaned_data}
                saved = event_create(actor=request.user, fields=fields)
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
            return
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # cancel instead: invitations and feedback name the event

    @admin.action(
        description=_("Publish: send the invitations at their time"), permissions=["change"]
    )
    def publish(self, request, queryset):
        self._each(request, queryset, lambda event: event_publish(event=event, actor=request.user))

    @admin.action(description=_("Cancel and tell everyone invited"), permissions=["change"])
    def cancel(self, request, queryset):
        self._each(request, queryset, lambda event: event_cancel(event=event, actor=request.user))

    def _each(self, request, queryset, step) -> None:
        done = 0
        for event in queryset:
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
