from django.contrib import admin

from accounts.forms import AdminLoginForm
from accounts.models import Membership, Organization, VendorCredentials


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(VendorCredentials)
class VendorCredentialsAdmin(admin.ModelAdmin):
    # Secrets are never shown back, not even to staff.
    list_display = ["organization", "wattcarbon_email", "wattics_username", "updated_at"]
    exclude = ["wattcarbon_api_key", "wattics_password"]


# The admin's login goes through the portal's login throttle.
admin.site.login_form = AdminLoginForm
