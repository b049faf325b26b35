"""The filters of the site, meter and device lists (django-filter), one FilterSet per list.
A site to choose comes from the current organization only."""

import django_filters as df
from django import forms
from django.db.models import Q, QuerySet

from accounts.models import Organization
from sites.methodologies import canonical_kind, kind_choices
from sites.models import Device, Meter, MeterType, Site, SyncStatus


def _search(placeholder: str) -> df.CharFilter:
    return df.CharFilter(
        label="Search", method="search", widget=forms.TextInput(attrs={"type": "search", "placeholder": placeholder})
    )


class SiteFilter(df.FilterSet):
    q = _search("Name, custom id or city")

    class Meta:
        model = Site
        fields: list[str] = []

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(custom_id__icontains=value) | Q(city__icontains=value))


class _AtSiteFilter(df.FilterSet):
    """A list of things at sites: the site filter offers the organization's sites."""

    site = df.ModelChoiceFilter(queryset=Site.objects.none(), empty_label="Any site")
    status = df.ChoiceFilter(
        field_name="wattcarbon_status", label="WattCarbon", choices=SyncStatus.choices, empty_label="Any status"
    )

    def __init__(self, data=None, queryset=None, *, organization: Organization, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.filters["site"].queryset = Site.objects.filter(organization=organization)


class MeterFilter(_AtSiteFilter):
    q = _search("Name or stream id")
    type = df.ChoiceFilter(field_name="meter_type", label="Type", choices=MeterType.choices, empty_label="Any type")

    class Meta:
        model = Meter
        fields = ["q", "site", "type", "status"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(name__icontains=value) | Q(wattics_stream_id__icontains=value) | Q(wattcarbon_id__iexact=value)
        )


class DeviceFilter(_AtSiteFilter):
    q = _search("Name or custom id")
    kind = df.CharFilter(method="of_kind")

    class Meta:
        model = Device
        fields = ["q", "site", "kind", "status"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The registry's kinds as they are now (a select, though any old name is accepted).
        self.filters["kind"].extra["widget"] = forms.Select(choices=[("", "Any kind"), *kind_choices()])

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(custom_id__icontains=value))

    def of_kind(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # A kind under its old name (a bookmarked link) finds today's devices of that kind.
        return queryset.filter(kind=canonical_kind(value))
