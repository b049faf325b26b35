from django import forms

from notifications.models import EmailMode, Event


class EmailPreferenceForm(forms.Form):
    mode = forms.ChoiceField(choices=EmailMode.choices, widget=forms.RadioSelect, label="E-mail me")
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, required=False, label="About"
    )


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https")
    secret = forms.CharField(
        max_length=200,
        min_length=16,
        help_text="Signs each body: X-Portal-Signature: sha256=HMAC-SHA256(secret, body).",
    )
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, required=False, help_text="None: every event."
    )
