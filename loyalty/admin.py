"""The staff console's building blocks: every ModelAdmin of the project derives from
``ConsoleAdmin`` (the unfold theme, and CSV/Excel export of what the list shows, for whoever may
view it) or from ``ReadOnlyAdmin`` (the same, for records nobody edits: ledger entries,
snapshots, audit rows). Inlines come from here too, so the theme is one import away. A
destructive or bulk action asks first, on a ``confirmation_page``."""

from collections.abc import Mapping
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.db import models
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
from import_export.admin import ExportMixin, ImportMixin
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

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        """Any list of a member's rows can be filtered by the exact customer number (the
        customer view links to ``?member__customer_no=...``); the model's own view permission
        still decides who sees the list."""
        return lookup == "member__customer_no" or super().lookup_allowed(lookup, value, request)


# How many rows a confirmation page lists (its count says how many there are in all).
CONFIRM_LIST_LIMIT = 100


def confirmation_page(
    request: HttpRequest,
    model_admin: admin.ModelAdmin,
    *,
    title: Any,
    intro: Any,
    rows: list[str],
    count: int,
    submit: Any,
    action_name: str = "",
    form: forms.Form | None = None,
    back: str,
    danger: bool = False,
    template: str = "admin/confirm_action.html",
    **extra_context: Any,
) -> TemplateResponse:
    """The intermediate page of a bulk or destructive action: what will happen, to which rows
    (the first ``CONFIRM_LIST_LIMIT`` of ``count``), the fields of ``form`` (a reason), and a
    button that posts the same selection again with ``confirm=yes`` (see ``confirmed``). A
    ``template`` extending ``admin/confirm_action.html`` may show the rows its own way."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "intro": intro,
        "rows": rows,
        "count": count,
        "more": max(0, count - len(rows)),
        "submit_label": submit,
        "action_name": action_name,
        "form": form,
        "back": back,
        "danger": danger,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        **extra_context,
    }
    return TemplateResponse(request, template, context)


def confirmed(request: HttpRequest) -> bool:
    """Whether staff confirmed on the confirmation page (a POST with ``confirm=yes``)."""
    return request.method == "POST" and request.POST.get("confirm") == "yes"


def dialog_done(request: HttpRequest, url: str) -> HttpResponse:
    """The answer of a detail-page action confirmed in the theme's dialog: the dialog posts
    with htmx, which would swap a redirect's page into the dialog, so htmx is told to load
    ``url`` as a whole page (a plain redirect without htmx)."""
    if request.headers.get("HX-Request"):
        return HttpResponse(headers={"HX-Redirect": url})
    return HttpResponseRedirect(url)


class ConsoleImportMixin(ImportMixin):
    """Import from a file with a preview and per-row errors (the model's resource keeps the
    file all or nothing). A confirmed import refused after its preview (a row turned invalid
    meanwhile: a member closed, a code taken) stored nothing and says so, never "import
    finished"."""

    import_export_change_list_template = "admin/import_export/change_list_import_export.html"

    def add_success_message(self, result, request) -> None:
        if result.has_errors() or result.has_validation_errors():
            self.message_user(
                request,
                _("Nothing was imported: the file no longer passes its checks. Import it again."),
                messages.ERROR,
            )
            return
        super().add_success_message(result, request)


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


# Groups and permissions picked in a searchable multi-select that keeps to the page's width
# (Django's two-box selector runs wider than 1,280 px with permission names).
PERMISSIONS_WIDGET: Mapping[type[models.Field], Mapping[str, Any]] = {
    models.ManyToManyField: {"widget": UnfoldAdminSelect2MultipleWidget}
}


@admin.register(User)
class UserAdmin(BaseUserAdmin, ConsoleAdmin):
    filter_horizontal = ()
    formfield_overrides = PERMISSIONS_WIDGET
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ConsoleAdmin):
    filter_horizontal = ()
    formfield_overrides = PERMISSIONS_WIDGET
    list_display = ["role", "name"]
    list_display_links = ["role"]

    @admin.display(description=_("role"), ordering="name")
    def role(self, group: Group) -> str:
        return str(ROLE_LABELS.get(group.name, group.name))


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


class ScheduleTasksInline(TabularInline):
    """The periodic tasks that run on a schedule, on the schedule's page."""

    model = PeriodicTask
    fields = ["title", "task_path"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    show_change_link = True
    verbose_name = _("periodic task on this schedule")
    verbose_name_plural = _("periodic tasks on this schedule")

    @admin.display(description=_("schedule"))
    def title(self, task: PeriodicTask) -> str:
        return schedule_text(task.name)

    @admin.display(description=_("task"))
    def task_path(self, task: PeriodicTask) -> str:
        return task.task


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin, ConsoleAdmin):
    form = PeriodicTaskForm
    list_display = ["title", "enabled", "when", "last_run_at", "one_off"]
    list_display_links = ["title"]

    @admin.display(description=_("schedule"), ordering="name")
    def title(self, task: PeriodicTask) -> str:
        return schedule_text(task.name)

    @admin.display(description=_("when"))
    def when(self, task: PeriodicTask) -> str:
        return str(task.scheduler or "-")

    @admin.display(description=_("in words"))
    def crontab_translation(self, task: PeriodicTask) -> str:
        return task.crontab.human_readable if task.crontab else "-"


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(ConsoleAdmin):
    inlines = [ScheduleTasksInline]


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(beat_admin.CrontabScheduleAdmin, ConsoleAdmin):
    inlines = [ScheduleTasksInline]
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
    inlines = [ScheduleTasksInline]


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(beat_admin.ClockedScheduleAdmin, ConsoleAdmin):
    inlines = [ScheduleTasksInline]


admin.site.index_title = _("Home")
