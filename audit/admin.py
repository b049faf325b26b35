from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: nobody adds, changes or deletes audit events, not even staff."""

    list_display = [
        "created_at",
        "organization_id",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "object_label",
    ]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "object_label", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
