import datetime as dt

import django_filters
from django.utils.translation import gettext_lazy as _

from loyalty.timeutils import business_tz
from points.models import Adjustment, Entry


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=business_tz())


class EntryFilter(django_filters.FilterSet):
    """``kind``, and ``from``/``to`` business dates (inclusive) of ``occurred_at``."""

    kind = django_filters.ChoiceFilter(choices=Entry.Kind.choices)

    class Meta:
        model = Entry
        fields = ["kind"]

    def filter_from(self, queryset, name, value):
        if value <= dt.date.min + dt.timedelta(days=1):
            return queryset  # nothing is that early
        return queryset.filter(occurred_at__gte=_start_of(value))

    def filter_to(self, queryset, name, value):
        if value >= dt.date.max - dt.timedelta(days=1):
            return queryset  # nothing is that late
        return queryset.filter(occurred_at__lt=_start_of(value + dt.timedelta(days=1)))


# ``from`` is a Python keyword, so these two are added by name.
EntryFilter.base_filters["from"] = django_filters.DateFilter(
    method="filter_from", label=_("From business date")
)
EntryFilter.base_filters["to"] = django_filters.DateFilter(
    method="filter_to", label=_("To business date")
)


class AdjustmentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Adjustment.Status.choices)
    customer_no = django_filters.CharFilter(field_name="member__customer_no")

    class Meta:
        model = Adjustment
        fields = ["status"]
