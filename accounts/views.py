from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from accounts.fields import is_unreadable
from accounts.forms import CredentialsForm, LoginForm, ThrottledPasswordChangeForm, ThrottledPasswordResetForm
from accounts.middleware import SESSION_KEY
from accounts.models import Role, mask_secret
from accounts.permissions import current_org_or_404, require_role
from accounts.selectors import credentials_for_org, organizations_for_user
from accounts.services import credentials_update
from core.http import local_redirect


def _throttled(form) -> bool:
    return any(e.code == "throttled" for e in form.errors.as_data().get("__all__", []))


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if _throttled(form):
            response.status_code = 429
        return response


@method_decorator(login_not_required, name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"request": self.request}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(e.code == "throttled" for e in form.non_field_errors().as_data()):
            response.status_code = 429
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = ThrottledPasswordChangeForm
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"request": self.request}


@require_POST
def switch_organization(request: HttpRequest) -> HttpResponse:
    org = organizations_for_user(user=request.user).filter(pk=request.POST.get("organization")).first()
    if org is not None:
        request.session[SESSION_KEY] = org.pk
    return local_redirect(request, request.POST.get("next"), "dashboard:home")


def credentials(request: HttpRequest) -> HttpResponse:
    """The organization's vendor credentials. Only owners see or change them."""
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    creds = credentials_for_org(organization=org)
    # What is stored, read before the form copies what was typed onto the instance.
    stored = {name: getattr(creds, name) for name in ("wattcarbon_api_key", "wattics_password")}
    form = CredentialsForm(request.POST or None, instance=creds)
    if request.method == "POST" and form.is_valid():
        try:
            credentials_update(organization=org, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Vendor credentials saved.")
            return redirect("accounts:credentials")
    masked = {name: mask_secret(value) for name, value in stored.items()}
    unreadable = {name: is_unreadable(value) for name, value in stored.items()}
    context = {"form": form, "masked": masked, "unreadable": unreadable, "org": org}
    return render(request, "accounts/credentials.html", context)
