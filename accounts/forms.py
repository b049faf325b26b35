from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import VendorCredentials


class LoginForm(AuthenticationForm):
    username = forms.CharField(widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))


class CredentialsForm(forms.ModelForm):
    """Secrets are write-only: the field starts empty, and empty keeps the stored value."""

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
