"""Forms of ingest: the upload form and the column mapping form."""

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from accounts.models import Organization
from sites.models import Meter
from uploads.models import Target, Upload
from uploads.parsing import ROLES, MappingNeeded
from uploads.parsing.columns import METER, layout


class UploadForm(forms.Form):
    meter = forms.ModelChoiceField(
        queryset=Meter.objects.none(),
        required=False,
        empty_label="The file has a meter column",
        help_text="Every row is for this meter. Or choose “The file has a meter column”: its values are matched "
        "against meter names, then Wattics stream ids.",
    )
    targets = forms.MultipleChoiceField(
        choices=Target.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Target.WATTCARBON_INTERVALS, Target.WATTICS],
        label="Push to",
    )
    file = forms.FileField(label="CSV file")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["meter"].queryset = Meter.objects.filter(organization=organization).select_related("site")
        self.fields["file"].help_text = (
            f"CSV or gzip-compressed CSV, UTF-8, comma, semicolon or tab separated; at most "
            f"{filesizeformat(settings.UPLOAD_MAX_BYTES)}."
        )

    def clean_file(self):
        file = self.cleaned_data["file"]
        if file.size > settings.UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"This file is {filesizeformat(file.size)}; the limit is {filesizeformat(settings.UPLOAD_MAX_BYTES)}. "
                "Split it, or compress it with gzip."
            )
        if file.size == 0:
            raise forms.ValidationError("This file is empty.")
        return file


class MappingForm(forms.Form):
    """One choice per column of the file: what it holds, or nothing."""

    def __init__(self, *args, upload: Upload, **kwargs):
        super().__init__(*args, **kwargs)
        self.header: list[str] = upload.options.get("header", [])
        self.needs_meter = upload.meter_id is None
        choices = [("", "— not used —")] + [
            (role, label) for role, label in ROLES.items() if self.needs_meter or role != METER
        ]
        for i, name in enumerate(self.header):
            self.fields[f"col_{i}"] = forms.ChoiceField(
                choices=choices,
                required=False,
                label=name or f"Column {i + 1} (no name)",
                initial=upload.column_mapping.get(name, ""),
            )

    def clean(self):
        data = super().clean()
        mapping = {name: data.get(f"col_{i}", "") for i, name in enumerate(self.header)}
        mapping = {name: role for name, role in mapping.items() if role}
        try:
            layout(self.header, mapping, needs_meter=self.needs_meter)
        except MappingNeeded as exc:
            raise forms.ValidationError(str(exc)) from exc
        self.mapping = mapping
        return data
