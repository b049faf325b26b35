"""Forms of ingest: the upload form and the column mapping form."""

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from accounts.models import Organization
from sites.models import Meter, NaiveTimes, ReadingKind
from uploads.models import Target, Upload
from uploads.parsing import ROLES, MappingNeeded
from uploads.parsing.columns import END_DATE, METER, NEXT_START, layout

# The targets that fit a meter's data: bills go to WattCarbon bills, interval readings elsewhere.
TARGETS_FOR_KIND = {
    ReadingKind.BILLING: [Target.WATTCARBON_BILLS.value],
    ReadingKind.INTERVAL: [Target.WATTCARBON_INTERVALS.value, Target.WATTICS.value],
}


def targets_for(meter: Meter | None) -> list[str]:
    targets = TARGETS_FOR_KIND[ReadingKind(meter.reading_kind) if meter else ReadingKind.INTERVAL]
    if meter is not None and not meter.wattics_stream_id:
        # Without a data stream id, a Wattics push fails at once: not ticked (it can still be chosen).
        targets = [t for t in targets if t != Target.WATTICS]
    return targets


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
    naive_times = forms.ChoiceField(
        choices=[("", "The meter's default (the site's local time unless the meter says UTC)"), *NaiveTimes.choices],
        required=False,
        label="Times without an offset are",
        help_text="How to read a timestamp like 2024-03-01 13:45. Times with an offset (+01:00, Z) are read as "
        "written.",
    )
    file = forms.FileField(label="CSV file")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        meters = Meter.objects.filter(organization=organization).select_related("site")
        self.fields["meter"].queryset = meters
        # For the page's script: which targets fit each meter, so choosing a meter ticks them.
        self.targets_by_meter = {str(m.pk): targets_for(m) for m in meters}
        chosen = meters.filter(pk=self.initial.get("meter")).first() if self.initial.get("meter") else None
        self.fields["targets"].initial = targets_for(chosen)
        self.fields["file"].help_text = (
            f"CSV or gzip-compressed CSV, UTF-8, comma, semicolon or tab separated; at most "
            f"{filesizeformat(settings.UPLOAD_MAX_BYTES)}."
        )
        self.fields["file"].help_text = FILE_HELP.format(limit=filesizeformat(settings.UPLOAD_MAX_BYTES))

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
        self.fields["bill_end"] = forms.ChoiceField(
            choices=[("", "An end date column"), ("next_start", "End = next row's start")],
            required=False,
            label="Bills end at",
            initial="next_start" if upload.column_mapping.get(NEXT_START) == END_DATE else "",
            help_text="For files with one start date and a value per row, each period ending where the next begins; "
            "the last row (empty or nan value) gives the last end.",
        )

    def clean(self):
        data = super().clean()
        mapping = {name: data.get(f"col_{i}", "") for i, name in enumerate(self.header)}
        mapping = {name: role for name, role in mapping.items() if role}
        if data.get("bill_end") == "next_start":
            mapping[NEXT_START] = END_DATE
        try:
            layout(self.header, mapping, needs_meter=self.needs_meter)
        except MappingNeeded as exc:
            raise forms.ValidationError(str(exc)) from exc
        self.mapping = mapping
        return data


# --- Formats: several files or a zip, the sheet of a workbook, the unit of the values ----------------
# Added to UploadForm from here (not in its body) so that its own fields stay as they are.


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def _unit_choices() -> list[tuple[str, str]]:
    from uploads.parsing.units import UNITS

    return [("", "The meter's unit (or the file's unit column)")] + [(u, u) for u in UNITS]


UploadForm.base_fields["more_files"] = MultipleFileField(
    required=False,
    label="More files",
    help_text="Optional: several files (or a zip) become one batch, one upload per file.",
)
UploadForm.base_fields["sheet"] = forms.CharField(
    required=False,
    max_length=100,
    label="Excel sheet",
    help_text="For an .xlsx workbook: the sheet to read (default: the first).",
)
UploadForm.base_fields["source_unit"] = forms.ChoiceField(
    required=False,
    choices=_unit_choices,
    label="Unit of the values",
    help_text="When the file has no unit column and is not in the meter's unit: the values are converted.",
)
UploadForm.base_fields["file"].label = "CSV file, Excel, Green Button XML or zip"


def _clean_more_files(self):
    files = self.cleaned_data.get("more_files") or []
    for file in files:
        if file.size > settings.UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"{file.name} is {filesizeformat(file.size)}; the limit is {filesizeformat(settings.UPLOAD_MAX_BYTES)}."
            )
    return files


UploadForm.clean_more_files = _clean_more_files

FILE_HELP = (
    "CSV (gzip too), Excel .xlsx, Green Button XML, a Portfolio Manager meter-entries export, or a zip of "
    "these; at most {limit}. See the accepted formats page."
)


class MeterMatchForm(forms.Form):
    """One meter per id of another system (a Green Button series, a Portfolio Manager meter id)."""

    def __init__(self, *args, upload: Upload, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys: list[str] = upload.options.get("meter_keys", [])
        meters = Meter.objects.filter(organization=upload.organization).select_related("site")
        for i, key in enumerate(self.keys):
            self.fields[f"meter_{i}"] = forms.ModelChoiceField(
                queryset=meters, label=key, required=False, empty_label="— leave out (its rows are not stored) —"
            )

    @property
    def choices(self) -> dict:
        return {key: self.cleaned_data.get(f"meter_{i}") for i, key in enumerate(self.keys)}
