from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.models import AuditLog, ProgrammeSettings, StaffNotice
from loyalty.services import programme_settings_update


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records: staff may look, never add, change or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProgrammeSettings)
class ProgrammeSettingsAdmin(admin.ModelAdmin):
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
    list_display = ["occurred_at", "actor_label", "action", "target_type", "target_id"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_id", "reason"]
    date_hierarchy = "occurred_at"


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
