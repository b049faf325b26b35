from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Organization
from sites.methodologies import METHODOLOGIES, canonical_kind, clean_values, form_fields, kind_choices
from sites.models import Device, Meter, NaiveTimes, ReadingKind, Site
from vendors.safety import VendorURLRefused, check_base_url

COMMON_TIMEZONES = [
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Vancouver",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Australia/Sydney",
    "Australia/Melbourne",
    "Pacific/Auckland",
]
INTERVAL_CHOICES = [(5, "5 minutes"), (15, "15 minutes"), (30, "30 minutes"), (60, "Hourly"), (1440, "Daily")]
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = [
            "name",
            "custom_id",
            "street",
            "city",
            "state",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "timezone",
            "utility",
        ]
        widgets = {"timezone": forms.TextInput(attrs={"list": "timezones", "autocomplete": "off"})}
        help_texts = {"timezone": "IANA time zone, e.g. America/New_York. Wattics packets carry this local time."}

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def _unique(self, field: str, label: str) -> Any:
        value = self.cleaned_data.get(field)
        if (
            value
            and Site.objects.filter(organization=self.organization, **{field: value})
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            raise ValidationError(f"Another site of your organization already has this {label}.")
        return value

    def clean_name(self):
        return self._unique("name", "name")

    def clean_custom_id(self):
        return self._unique("custom_id", "custom id")

    def clean_country(self):
        return (self.cleaned_data.get("country") or "").upper()

    def clean(self):
        data = super().clean()
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            raise ValidationError("Give both latitude and longitude, or neither.")
        return data


class MeterForm(forms.ModelForm):
    interval_minutes = forms.TypedChoiceField(choices=INTERVAL_CHOICES, coerce=int, initial=15, label="Interval")
    wattics_password = forms.CharField(
        label="Wattics password (this meter only)",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Overrides the organization's. Leave empty to keep the stored password.",
    )

    class Meta:
        model = Meter
        fields = [
            "site",
            "name",
            "meter_type",
            "unit",
            "reading_kind",
            "interval_minutes",
            "naive_times",
            "wattics_stream_id",
            "wattics_format",
            "wattics_username",
            "live",
            "wattics_base_url",
        ]
        # wattics_password is a plain field, not a model field: the form never writes it to the
        # instance, so an empty one leaves the stored password alone (meter_update decides).
        labels = {"wattics_format": "Wattics packet format", "wattics_username": "Wattics username (this meter only)"}
        help_texts = {
            "meter_type": "WattCarbon takes electricity and gas meters.",
            "wattics_base_url": "With this meter's own credentials only. Empty: the organization's.",
            "reading_kind": "Billing periods (monthly or irregular bills) go to WattCarbon as bills, never as "
            "intervals; the interval is then unused.",
            "naive_times": "The default of this meter's uploads; each upload may say otherwise.",
        }

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["site"].queryset = Site.objects.filter(organization=organization)
        # Both have a default: a form (or a script) that leaves them out keeps it.
        self.fields["reading_kind"].required = False
        self.fields["naive_times"].required = False

    def clean_reading_kind(self):
        return self.cleaned_data.get("reading_kind") or self.instance.reading_kind or ReadingKind.INTERVAL

    def clean_naive_times(self):
        return self.cleaned_data.get("naive_times") or self.instance.naive_times or NaiveTimes.LOCAL

    def clean_wattics_stream_id(self):
        value = self.cleaned_data.get("wattics_stream_id", "")
        others = Meter.objects.filter(organization=self.organization, wattics_stream_id=value).exclude(
            pk=self.instance.pk
        )
        if value and others.exists():
            raise ValidationError("Another meter of your organization uses this Wattics stream id.")
        return value

    def clean_wattics_base_url(self) -> str:
        # The same rules as the organization's vendor URLs: a vendor host, never an internal address.
        url = self.cleaned_data.get("wattics_base_url", "")
        if url:
            try:
                check_base_url(url, resolve=True)
            except VendorURLRefused as exc:
                raise ValidationError(str(exc)) from exc
        return url

    def clean(self):
        data = super().clean()
        site, name = data.get("site"), data.get("name")
        if site and name and Meter.objects.filter(site=site, name=name).exclude(pk=self.instance.pk).exists():
            self.add_error("name", f"{site} already has a meter with this name.")
        return data


class DeviceForm(forms.Form):
    """Common device fields, then the fields of the chosen kind, from the methodology registry.

    The kind comes from the submitted data, else the instance, else `kind`. A form for
    another kind is a new form: the page re-renders ("Show fields", or htmx) with the data kept.
    """

    kind = forms.ChoiceField(label="Kind (methodology)")
    site = forms.ModelChoiceField(queryset=Site.objects.none())
    name = forms.CharField(max_length=200)
    custom_id = forms.CharField(
        label="Custom id", max_length=100, help_text="Your own id for the device; unique in the organization."
    )
    meters = forms.ModelMultipleChoiceField(
        queryset=Meter.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Meters of the chosen site. Meter-based kinds need at least one.",
    )
    commenced_operation_date = forms.DateField(
        widget=DATE_INPUT, required=False, help_text="Required by every kind but demand response."
    )
    owner_name = forms.CharField(label="Owner name", max_length=200, required=False)
    utility = forms.CharField(max_length=200, required=False, help_text="Empty: the site's utility.")
    external_registry_name = forms.CharField(
        label="External registry", max_length=100, required=False, help_text="For example GATS."
    )
    external_registry_id = forms.CharField(label="External registry device id", max_length=100, required=False)

    COMMON_FIELDS = (
        "site",
        "name",
        "custom_id",
        "meters",
        "commenced_operation_date",
        "owner_name",
        "utility",
        "external_registry_name",
        "external_registry_id",
    )

    def __init__(
        self,
        data=None,
        *,
        organization: Organization,
        instance: Device | None = None,
        kind: str = "",
        initial: dict | None = None,
        **kwargs,
    ):
        initial = dict(initial or {})
        if data is not None and canonical_kind(data.get("kind") or "") != (data.get("kind") or ""):
            # A kind under its old name (a bookmarked form, another tool posting): today's name.
            data = data.copy()
            data["kind"] = canonical_kind(data["kind"])
        if instance is not None:
            base = {name: getattr(instance, name) for name in self.COMMON_FIELDS if name != "meters"}
            base.update(
                site=instance.site_id, kind=instance.kind, meters=list(instance.meters.values_list("pk", flat=True))
            )
            base.update(instance.fields)
            initial = {**base, **initial}
        super().__init__(data, initial=initial, **kwargs)
        self.organization = organization
        self.instance = instance
        self.fields["kind"].choices = kind_choices()
        self.fields["site"].queryset = Site.objects.filter(organization=organization)
        meters = Meter.objects.filter(organization=organization).select_related("site")
        # Only the chosen site's meters are offered (the page's script follows the site select).
        # A bound form keeps them all, so clean() can name a meter of another site.
        site_id = initial.get("site") if data is None else None
        if str(site_id or "").isdigit():
            meters = meters.filter(site_id=site_id)
        self.fields["meters"].queryset = meters
        # For the page's script: each meter's site, to show only the chosen site's meters.
        self.meter_sites = {
            str(m.pk): str(m.site_id) for m in Meter.objects.filter(organization=organization).only("pk", "site_id")
        }
        chosen = canonical_kind((data.get("kind") if data is not None else None) or initial.get("kind") or kind)
        self.kind = chosen if chosen in METHODOLOGIES else next(iter(METHODOLOGIES))
        self.fields["kind"].initial = self.kind
        self.methodology = METHODOLOGIES[self.kind]
        self.kind_field_names = list(form_fields(self.methodology))
        self.fields.update(form_fields(self.methodology))

    @property
    def kind_value(self) -> str:
        # In templates `form.kind` is the bound field; this is the chosen kind itself.
        return self.kind

    @property
    def kind_bound_fields(self):
        return [self[name] for name in self.kind_field_names]

    def clean_custom_id(self):
        value = self.cleaned_data["custom_id"].strip()
        others = Device.objects.filter(organization=self.organization, custom_id=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError(f"Another device of your organization already uses the custom id {value!r}.")
        return value

    def clean(self):
        data = super().clean()
        site, meters = data.get("site"), data.get("meters") or []
        if site is not None:
            stray = [m.name for m in meters if m.site_id != site.pk]
            if stray:
                self.add_error("meters", f"Choose meters of {site} only (not {', '.join(stray)}).")
        if self.methodology.meter_based and "meters" not in self.errors and not meters:
            self.add_error("meters", f"A {self.methodology.label} device needs at least one meter.")
        # Field types were checked by the fields; the registry's cross-field rules run here.
        values = {name: data.get(name) for name in self.kind_field_names if name not in self.errors}
        try:
            self.kind_values = clean_values(self.kind, values)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                if name not in self.errors:
                    self.add_error(name if name in self.fields else None, messages)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        """What device_create/device_update take."""
        data = self.cleaned_data
        common = {name: data[name] for name in self.COMMON_FIELDS if name != "meters"}
        return {**common, "kind": self.kind, "fields": self.kind_values, "meters": list(data["meters"])}


class DeviceDocumentForm(forms.Form):
    """A document of a device's WattCarbon asset, e.g. its demand-response events (CSV)."""

    document_type = forms.CharField(widget=forms.HiddenInput)
    file = forms.FileField(label="CSV file")
