"""The filters of the audit page (django-filter); a bad value is a form error, never a 500."""

from datetime import UTC, datetime, time, timedelta

import django_filters as df
from django import forms
from django.db.models import QuerySet

from audit.models import AuditAction, AuditEvent, AuditObjectType

DATE = forms.DateInput(attrs={"type": "date"})


class AuditFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end is before the start.")
        return data


class AuditFilter(df.FilterSet):
    actor = df.ChoiceFilter(field_name="actor_id", empty_label="Anyone")
    action = df.ChoiceFilter(choices=AuditAction.choices, empty_label="Any action")
    object_type = df.ChoiceFilter(label="Object", choices=AuditObjectType.choices, empty_label="Any object")
    # Whole UTC days.
    date_from = df.DateFilter(label="From", method="since", widget=DATE)
    date_to = df.DateFilter(label="To", method="until", widget=DATE)

    class Meta:
        model = AuditEvent
        form = AuditFilterForm
        fields = ["actor", "action", "object_type", "date_from", "date_to"]

    def __init__(self, data=None, queryset=None, *, actors: list[tuple[int, str]], **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.filters["actor"].extra["choices"] = actors

    def since(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(created_at__gte=datetime.combine(value, time.min, tzinfo=UTC))

    def until(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(created_at__lt=datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC))
