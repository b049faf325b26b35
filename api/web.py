"""The owners' page of API keys: make one (shown once), see prefixes and last use, revoke."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import current_org_or_404, require_role
from api.forms import ApiKeyForm
from api.models import OrganizationAPIKey
from api.services import api_key_create, api_key_revoke


def api_keys(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    form = ApiKeyForm(request.POST or None)
    new_key = ""
    if request.method == "POST" and form.is_valid():
        _, new_key = api_key_create(organization=org, created_by=request.user, **form.cleaned_data)
        form = ApiKeyForm()
    keys = OrganizationAPIKey.objects.filter(organization=org).select_related("created_by").order_by("-created")
    # The new key is in this page only (not in a message, not in a redirect): shown once.
    return render(request, "api/keys.html", {"form": form, "keys": keys, "new_key": new_key, "org": org})


@require_POST
def api_key_revoke_view(request: HttpRequest, prefix: str) -> HttpResponse:
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    api_key = get_object_or_404(OrganizationAPIKey, organization=org, prefix=prefix)
    if api_key_revoke(api_key=api_key, user=request.user):
        messages.success(request, f"API key {api_key.name} ({api_key.prefix}…) revoked: it no longer works.")
    return redirect("api_keys:list")
