from django import forms
from django.core.validators import RegexValidator


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=16,
        validators=[RegexValidator(r"^[A-Za-z0-9 ]+$", "Letters and digits only.")],
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        help_text="The 6 digits your authenticator app shows, or one of your recovery codes.",
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].replace(" ", "")


class SetupForm(TokenForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].help_text = "The 6 digits your authenticator app shows after you add the account."


class RequireTwoFactorForm(forms.Form):
    require_two_factor = forms.BooleanField(label="Owners must use two-factor login", required=False)
