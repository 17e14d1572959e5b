"""The staff console's building blocks: every ModelAdmin of the project derives from
``ConsoleAdmin`` (the unfold theme, and CSV/Excel export of what the list shows, for whoever may
view it) or from ``ReadOnlyAdmin`` (the same, for records nobody edits: ledger entries,
snapshots, audit rows). Inlines come from here too, so the theme is one import away. A
destructive or bulk list action asks first, through ``action_confirmation``."""

from dataclasses import dataclass

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from import_export.admin import ExportMixin
from unfold import admin as unfold
from unfold.contrib.import_export.forms import ExportForm, ImportForm
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import (
    UnfoldAdminSelect2MultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from loyalty.models import AuditLog, ProgrammeSettings, StaffNotice
from loyalty.roles import ROLE_LABELS
from loyalty.schedules import schedule_text
from loyalty.services import programme_settings_update


class ConsoleAdmin(ExportMixin, unfold.ModelAdmin):
    """The base of every ModelAdmin: themed, with an Export button on its list (the rows the
    filters select, in CSV or Excel) for users who hold the model's view permission."""

    import_form_class = ImportForm
    export_form_class = ExportForm
    list_per_page = 50
    list_filter_submit = True
    warn_unsaved_form = True


@dataclass
class Confirmation:
    """The confirmation step of a list action: ``page`` to show until staff confirm (``None``
    once they have), and the confirmation page's ``form``, valid once confirmed."""

    page: TemplateResponse | None
    form: forms.Form | None = None


def action_confirmation(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    question: str,
    items: list[str],
    confirm_label: str,
    form_class: type[forms.Form] | None = None,
) -> Confirmation:
    """For destructive and bulk actions: a page that lists what will happen (``items``) and
    asks for a confirm click (and the fields of ``form_class``) before the action runs."""
    confirming = request.POST.get("confirmed") == "yes"
    form = form_class(request.POST if confirming else None) if form_class else None
    if confirming and (form is None or form.is_valid()):
        return Confirmation(page=None, form=form)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": question,
        "question": question,
        "items": items,
        "queryset": queryset,
        "action": request.POST.get("action", ""),
        "confirm_label": confirm_label,
        "form": form,
        "opts": model_admin.opts,
        "back_url": request.get_full_path(),
    }
    return Confirmation(page=TemplateResponse(request, "admin/confirm_action.html", context))


def dialog_done(request: HttpRequest, url: str) -> HttpResponse:
    """The answer of a detail-page action confirmed in the theme's dialog: the dialog posts
    with htmx, which would swap a redirect's page into the dialog, so htmx is told to load
    ``url`` as a whole page (a plain redirect without htmx)."""
    if request.headers.get("HX-Request"):
        return HttpResponse(headers={"HX-Redirect": url})
    return HttpResponseRedirect(url)


class TabularInline(unfold.TabularInline):
    pass


class StackedInline(unfold.StackedInline):
    pass


class ReadOnlyAdmin(ConsoleAdmin):
    """For append-only records: staff may look, never add, change or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProgrammeSettings)
class ProgrammeSettingsAdmin(ConsoleAdmin):
    list_display = [
        "__str__",
        "point_value",
        "currency",
        "expiry_policy",
        "expiry_months",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        return not ProgrammeSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        programme_settings_update(
            actor=request.user,
            reason=str(_("Changed in the admin")),
            **{field: form.cleaned_data[field] for field in form.changed_data},
        )


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "actor_label", "action", "target", "reason"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_id", "reason"]
    date_hierarchy = "occurred_at"

    @admin.display(description=_("target"), ordering="target_type")
    def target(self, entry: AuditLog) -> str:
        """The target's kind in the reader's language (``points.adjustment`` is a "points
        adjustment"), then its reference."""
        try:
            kind = apps.get_model(entry.target_type)._meta.verbose_name
        except (LookupError, ValueError):
            kind = entry.target_type
        return f"{kind} {entry.target_id}"


@admin.register(StaffNotice)
class StaffNoticeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "role", "title", "read_at"]
    list_filter = ["kind", "role", ("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "body"]
    actions = ["mark_read"]

    @admin.action(description=_("Mark as read"), permissions=["view"])
    def mark_read(self, request, queryset):
        updated = queryset.filter(read_at__isnull=True).update(read_at=timezone.now())
        self.message_user(request, _("%(count)s notices marked as read.") % {"count": updated})


# Django's own users and groups, in the console's theme (unfold's forms for the password pages).
admin.site.unregister(User)
admin.site.unregister(Group)


class PermissionsWidgetMixin:
    """Groups and permissions picked in a searchable multi-select that keeps to the page's
    width (Django's two-box selector runs wider than 1,280 px with permission names)."""

    filter_horizontal = ()

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs["widget"] = UnfoldAdminSelect2MultipleWidget
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(User)
class UserAdmin(PermissionsWidgetMixin, BaseUserAdmin, ConsoleAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(PermissionsWidgetMixin, BaseGroupAdmin, ConsoleAdmin):
    list_display = ["role", "name"]
    list_display_links = ["role"]

    @admin.display(description=_("role"), ordering="name")
    def role(self, group: Group) -> str:
        return ROLE_LABELS.get(group.name, group.name)


# The Celery schedules (django-celery-beat), in the console's theme.
for model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    admin.site.unregister(model)


class TaskSelectWidget(UnfoldAdminSelectWidget, beat_admin.TaskSelectWidget):
    pass


class PeriodicTaskForm(beat_admin.PeriodicTaskForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].widget = UnfoldAdminTextInputWidget()
        self.fields["regtask"].widget = TaskSelectWidget()


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin, ConsoleAdmin):
    form = PeriodicTaskForm
    list_display = ["title", "enabled", "scheduler", "last_run_at", "one_off"]
    list_display_links = ["title"]

    @admin.display(description=_("schedule"), ordering="name")
    def title(self, task: PeriodicTask) -> str:
        return schedule_text(task.name)


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(ConsoleAdmin):
    pass


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(beat_admin.CrontabScheduleAdmin, ConsoleAdmin):
    list_display = ["__str__", "in_words"]
    fields = [
        "in_words",
        "minute",
        "hour",
        "day_of_month",
        "month_of_year",
        "day_of_week",
        "timezone",
    ]
    readonly_fields = ["in_words"]

    @admin.display(description=_("in words"))
    def in_words(self, schedule: CrontabSchedule) -> str:
        return schedule.human_readable


@admin.register(SolarSchedule)
class SolarScheduleAdmin(beat_admin.SolarScheduleAdmin, ConsoleAdmin):
    pass


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(beat_admin.ClockedScheduleAdmin, ConsoleAdmin):
    pass


admin.site.index_title = _("Programme overview")
