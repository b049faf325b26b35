"""The filters of the uploads list (django-filter). The site, meter and person to choose come
from the current organization only."""

from datetime import datetime, time, timedelta

import django_filters as df
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import Organization
from sites.models import Meter, Site
from uploads import selectors
from uploads.models import Delivery, Target, Upload, UploadStatus
from uploads.selectors import ATTENTION_DELIVERY_STATUSES

DATE = forms.DateInput(attrs={"type": "date"})


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _delivered(**lookup) -> Exists:
    """Uploads with a delivery that matches: a file with a meter column has no single meter."""
    return Exists(Delivery.objects.filter(upload=OuterRef("pk"), **lookup))


class UploadFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=UploadStatus.choices, empty_label="Any status", method="with_status")
    target = df.ChoiceFilter(label="Target", choices=Target.choices, empty_label="Any target", method="for_target")
    site = df.ModelChoiceFilter(label="Site", queryset=Site.objects.none(), empty_label="Any site", method="at_site")
    meter = df.ModelChoiceFilter(queryset=Meter.objects.none(), empty_label="Any meter", method="of_meter")
    uploaded_by = df.ModelChoiceFilter(
        queryset=Site.objects.none(), empty_label="Anyone", label="Uploaded by"
    )  # people: set in __init__
    date_from = df.DateFilter(label="From", method="since", widget=DATE)
    date_to = df.DateFilter(label="To", method="until", widget=DATE)

    class Meta:
        model = Upload
        fields = ["status", "target", "site", "meter", "uploaded_by", "date_from", "date_to"]

    def __init__(self, data=None, queryset=None, *, organization: Organization, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.filters["site"].queryset = Site.objects.filter(organization=organization)
        self.filters["meter"].queryset = Meter.objects.filter(organization=organization).select_related("site")
        self.filters["uploaded_by"].queryset = selectors.uploaders_for_org(organization=organization)

    def with_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == UploadStatus.FAILED:
            # "Failed" as people mean it: the upload failed, or one of its pushes did.
            return queryset.filter(Q(status=value) | _delivered(status__in=ATTENTION_DELIVERY_STATUSES))
        return queryset.filter(status=value)

    def for_target(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # Chosen targets live in a JSON list; icontains on the quoted value works on SQLite and
        # PostgreSQL alike (JSON `contains` is not available on SQLite). Deliveries count too,
        # in case the list was edited after they were created.
        return queryset.filter(Q(targets__icontains=f'"{value}"') | _delivered(target=value))

    def at_site(self, queryset: QuerySet, name: str, value: Site) -> QuerySet:
        return queryset.filter(Q(meter__site=value) | _delivered(meter__site=value))

    def of_meter(self, queryset: QuerySet, name: str, value: Meter) -> QuerySet:
        return queryset.filter(Q(meter=value) | _delivered(meter=value))

    def since(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(created_at__gte=_day_start(value))

    def until(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(created_at__lt=_day_start(value + timedelta(days=1)))
