"""Notification settings: each member's e-mail choices; the owners' webhooks and their attempts."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import current_org_or_404, membership_for, require_role
from notifications.forms import EmailPreferenceForm, WebhookForm
from notifications.models import EmailPreference, Event, Notice, Webhook, WebhookDelivery
from notifications.services import email_preference_set, webhook_create, webhook_delete

RECENT = 20


def notification_settings(request: HttpRequest) -> HttpResponse:
    org = current_org_or_404(request)
    is_owner = membership_for(request, org).allows(Role.OWNER)
    pref = EmailPreference.objects.filter(user=request.user, organization=org).first()
    initial = {"mode": pref.mode, "events": pref.events} if pref else {"mode": "immediate", "events": Event.values}
    form = EmailPreferenceForm(request.POST if "save_email" in request.POST else None, initial=initial)
    webhook_form = WebhookForm(request.POST if "add_webhook" in request.POST else None)
    if "save_email" in request.POST and form.is_valid():
        email_preference_set(user=request.user, organization=org, **form.cleaned_data)
        messages.success(request, "E-mail choices saved.")
        return redirect("notifications:settings")
    if "add_webhook" in request.POST:
        require_role(request, org, Role.OWNER)
        if webhook_form.is_valid():
            webhook_create(organization=org, **webhook_form.cleaned_data)
            messages.success(request, "Webhook added.")
            return redirect("notifications:settings")
    context = {
        "org": org,
        "form": form,
        "webhook_form": webhook_form,
        "is_owner": is_owner,
        "webhooks": Webhook.objects.filter(organization=org),
        "deliveries": WebhookDelivery.objects.filter(webhook__organization=org)
        .select_related("notice", "webhook")
        .prefetch_related("attempt_log")[:RECENT],
        "notices": Notice.objects.filter(organization=org)[:RECENT],
    }
    return render(request, "notifications/settings.html", context)


@require_POST
def webhook_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    webhook_delete(webhook=get_object_or_404(Webhook, organization=org, pk=pk))
    messages.success(request, "Webhook removed.")
    return redirect("notifications:settings")
