from django.contrib import admin

from sites.models import Device, DeviceDocument, Meter, Site


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "custom_id", "city", "timezone"]
    list_filter = ["organization"]
    search_fields = ["name", "custom_id"]


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "meter_type", "interval_minutes", "wattcarbon_id", "wattcarbon_status"]
    list_filter = ["meter_type", "wattcarbon_status", "organization"]
    search_fields = ["name", "wattics_stream_id", "wattcarbon_id"]
    exclude = ["wattics_password"]  # write-only: set it on the portal's meter form


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["name", "custom_id", "site", "kind", "wattcarbon_id", "wattcarbon_status"]
    list_filter = ["kind", "wattcarbon_status", "organization"]
    search_fields = ["name", "custom_id", "wattcarbon_id"]
    filter_horizontal = ["meters"]


@admin.register(DeviceDocument)
class DeviceDocumentAdmin(admin.ModelAdmin):
    list_display = ["filename", "device", "document_type", "rows", "status", "uploaded_at"]
    list_filter = ["document_type", "status", "organization"]
    search_fields = ["filename", "device__name", "device__custom_id"]
