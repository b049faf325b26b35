from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm

from accounts import throttle
from accounts.fields import is_unreadable
from accounts.models import VendorCredentials
from accounts.services import SECRET_OF_URL, effective_url
from vendors.safety import VendorURLRefused, check_base_url


class ThrottledLoginMixin:
    """Every form that checks a password counts the attempt first (accounts/throttle.py):
    over the limit, the password is not even checked."""

    def clean(self):
        username = self.data.get("username", "")
        request = self.request  # None only when a form is built outside a view
        if request is not None and not throttle.login_attempt(request, username):
            raise forms.ValidationError(throttle.locked_message(), code="throttled")
        cleaned = super().clean()
        if request is not None:
            throttle.login_succeeded(request, username)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    username = forms.CharField(widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The Django admin's login, under the same throttle as the portal's."""


class ThrottledPasswordResetForm(PasswordResetForm):
    """A reset request counts as a login attempt for that address: nobody floods a
    mailbox, and nobody probes addresses faster than they could guess passwords."""

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email", "")
        if self.request is not None and email and not throttle.login_attempt(self.request, email):
            raise forms.ValidationError(throttle.locked_message(), code="throttled")
        return cleaned


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Checking the old password is a password check too: same throttle, per user."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        username = self.user.get_username()
        if self.request is not None and not throttle.login_attempt(self.request, username):
            raise forms.ValidationError(throttle.locked_message(), code="throttled")
        old = super().clean_old_password()
        if self.request is not None:
            throttle.login_succeeded(self.request, username)
        return old


class CredentialsForm(forms.ModelForm):
    """Secrets are write-only: the field starts empty, and empty keeps the stored value.

    A base URL must name an allowed vendor host that resolves to a public address
    (vendors/safety.py), and changing it requires the vendor's secret again."""

    wattcarbon_api_key = forms.CharField(
        label="WattCarbon API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored key.",
    )
    wattics_password = forms.CharField(
        label="Wattics password",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored password.",
    )

    class Meta:
        model = VendorCredentials
        fields = [
            "wattcarbon_base_url",
            "wattcarbon_email",
            "wattcarbon_api_key",
            "wattics_base_url",
            "wattics_username",
            "wattics_password",
        ]
        labels = {
            "wattcarbon_base_url": "WattCarbon base URL",
            "wattcarbon_email": "WattCarbon account email",
            "wattics_base_url": "Wattics base URL",
            "wattics_username": "Wattics username",
        }

    def _clean_base_url(self, name: str) -> str:
        url = self.cleaned_data.get(name, "")
        if url:
            try:
                check_base_url(url, resolve=True)
            except VendorURLRefused as exc:
                raise forms.ValidationError(str(exc)) from exc
        return url

    def clean_wattcarbon_base_url(self) -> str:
        return self._clean_base_url("wattcarbon_base_url")

    def clean_wattics_base_url(self) -> str:
        return self._clean_base_url("wattics_base_url")

    def clean(self):
        cleaned = super().clean()
        # self.instance still holds the stored values here (the form copies onto it later).
        for url_field, secret_field in SECRET_OF_URL.items():
            if url_field not in cleaned or cleaned.get(secret_field):
                continue
            stored_secret = getattr(self.instance, secret_field)
            if not (stored_secret or is_unreadable(stored_secret)):
                continue
            if effective_url(url_field, cleaned[url_field]) != effective_url(
                url_field, getattr(self.instance, url_field)
            ):
                self.add_error(
                    secret_field, "The base URL changed: enter this secret again to send it to the new address."
                )
        return cleaned
