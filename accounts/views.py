from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from accounts import throttle
from accounts.forms import CredentialsForm, LoginForm
from accounts.middleware import SESSION_KEY
from accounts.models import Role, mask_secret
from accounts.permissions import current_org_or_404, require_role
from accounts.selectors import credentials_for_org, organizations_for_user
from accounts.services import credentials_update


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        if throttle.login_blocked(request, username):
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many failed attempts. Wait 15 minutes, then try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttle.login_failed(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)

    def form_valid(self, form):
        throttle.login_succeeded(self.request, form.get_user().get_username())
        return super().form_valid(form)


@require_POST
def switch_organization(request: HttpRequest) -> HttpResponse:
    org = organizations_for_user(user=request.user).filter(pk=request.POST.get("organization")).first()
    if org is not None:
        request.session[SESSION_KEY] = org.pk
    return redirect(request.POST.get("next") or "dashboard:home")


def credentials(request: HttpRequest) -> HttpResponse:
    """The organization's vendor credentials. Only owners see or change them."""
    org = current_org_or_404(request)
    require_role(request, org, Role.OWNER)
    creds = credentials_for_org(organization=org)
    form = CredentialsForm(request.POST or None, instance=creds)
    if request.method == "POST" and form.is_valid():
        credentials_update(organization=org, **form.cleaned_data)
        messages.success(request, "Vendor credentials saved.")
        return redirect("accounts:credentials")
    masked = {
        "wattcarbon_api_key": mask_secret(creds.wattcarbon_api_key),
        "wattics_password": mask_secret(creds.wattics_password),
    }
    return render(request, "accounts/credentials.html", {"form": form, "masked": masked, "org": org})
