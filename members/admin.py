from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from members.models import AssetSnapshot, Member
from members.services import member_close, member_freeze, member_unfreeze


class AssetSnapshotInline(admin.TabularInline):
    model = AssetSnapshot
    extra = 0
    ordering = ["-as_of"]
    fields = ["as_of", "deposits", "wealth", "funds", "insurance", "loans", "aum", "contribution"]
    readonly_fields = ["aum"]
    max_num = 60


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["customer_no", "name", "status", "city", "branch_code", "joined_at"]
    list_filter = [
        "status",
        "gender",
        "risk_level",
        "preferred_language",
        "marketing_consent",
        "city",
    ]
    search_fields = ["customer_no", "name", "email"]
    date_hierarchy = "joined_at"
    readonly_fields = ["status", "status_changed_at", "created_at", "updated_at"]
    inlines = [AssetSnapshotInline]
    actions = ["freeze", "unfreeze", "close"]
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        # The bank's customer number never changes once the member exists.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "customer_no"] if obj else fields

    def _status_action(self, request, queryset, service, done_message):
        count = 0
        for member in queryset.order_by("pk"):
            try:
                service(member=member, actor=request.user, reason=str(_("Admin action")))
                count += 1
            except Exception as exc:  # report each refusal and go on with the rest
                self.message_user(request, f"{member.customer_no}: {exc}", messages.ERROR)
        self.message_user(request, done_message % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Freeze selected members"), permissions=["change"])
    def freeze(self, request, queryset):
        self._status_action(request, queryset, member_freeze, _("%(count)s members frozen."))

    @admin.action(description=_("Unfreeze selected members"), permissions=["change"])
    def unfreeze(self, request, queryset):
        self._status_action(request, queryset, member_unfreeze, _("%(count)s members unfrozen."))

    @admin.action(
        description=_("Close selected members (forfeits their points)"), permissions=["change"]
    )
    def close(self, request, queryset):
        self._status_action(request, queryset, member_close, _("%(count)s members closed."))


@admin.register(AssetSnapshot)
class AssetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["member", "as_of", "aum", "contribution", "loans"]
    list_filter = ["as_of"]
    search_fields = ["member__customer_no", "member__name"]
    raw_id_fields = ["member"]
    date_hierarchy = "as_of"
