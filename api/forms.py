from django import forms

from api.models import KeyRole


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=50, help_text="What uses it, e.g. 'nightly logger at plant 2'.")
    role = forms.ChoiceField(
        choices=KeyRole.choices,
        initial=KeyRole.OPERATOR,
        help_text="Operator keys upload and change; viewer keys read.",
    )
