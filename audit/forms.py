from django import forms

from audit.models import AuditAction, AuditObjectType


class AuditFilterForm(forms.Form):
    """Filters of the audit page; a bad value is a form error, never a 500."""

    actor = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    object_type = forms.ChoiceField(
        required=False, label="Object", choices=[("", "Any object"), *AuditObjectType.choices]
    )
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actors: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", "Anyone"), *actors]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end is before the start.")
        return data
