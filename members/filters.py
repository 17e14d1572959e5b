from decimal import Decimal

import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from loyalty.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from members.models import Member, Message, SegmentMember, TierOverride

# A money column holds less than this in magnitude; a filter bound beyond it is refused (400).
MONEY_BOUND = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)


def money_filter(field_name: str, lookup_expr: str, label) -> django_filters.NumberFilter:
    """A filter on a money column, its bounds enforced and in the schema."""
    number = django_filters.NumberFilter(
        field_name=field_name,
        lookup_expr=lookup_expr,
        label=label,
        min_value=-MONEY_BOUND,
        max_value=MONEY_BOUND,
    )
    schema = {
        "type": "number",
        "minimum": -int(MONEY_BOUND),
        "maximum": int(MONEY_BOUND),
        "description": label,
    }
    return extend_schema_field(schema)(number)


class MemberFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Member.Status.choices)
    aum_min = money_filter("latest_aum", "gte", _("AUM at least"))
    aum_max = money_filter("latest_aum", "lte", _("AUM at most"))
    joined_from = django_filters.DateFilter(field_name="joined_at", lookup_expr="gte")
    joined_to = django_filters.DateFilter(field_name="joined_at", lookup_expr="lte")
    city = django_filters.CharFilter()
    tier = django_filters.CharFilter(field_name="tier_code", label=_("Current tier code"))
    branch_code = django_filters.CharFilter()
    segment = django_filters.UUIDFilter(
        method="filter_segment", label=_("Members of this segment (as last refreshed)")
    )
    search = django_filters.CharFilter(
        method="filter_search", label=_("Customer number, name or email")
    )

    class Meta:
        model = Member
        fields = ["status", "city", "branch_code"]

    def filter_segment(self, queryset, name, value):
        members = SegmentMember.objects.filter(segment_id=value, member_id=OuterRef("pk"))
        return queryset.filter(Exists(members))

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(customer_no__iexact=value) | Q(name__icontains=value) | Q(email__iexact=value)
        )


def boolean_filter(field_name: str, lookup_expr: str, label) -> django_filters.Filter:
    """``true`` or ``false``, as the schema's boolean serializes; anything else is refused (400),
    where django-filter's own boolean filter would quietly filter nothing."""
    choices = [("true", "true"), ("false", "false")]
    strict = django_filters.TypedChoiceFilter(
        field_name=field_name,
        lookup_expr=lookup_expr,
        label=label,
        choices=choices,
        coerce=lambda value: value == "true",
    )
    return extend_schema_field({"type": "boolean", "description": label})(strict)


class MessageFilter(django_filters.FilterSet):
    unread = boolean_filter("read_at", "isnull", _("Only unread (true) or only read (false)"))
    kind = django_filters.ChoiceFilter(choices=Message.Kind.choices)

    class Meta:
        model = Message
        fields = ["kind"]


class TierOverrideFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TierOverride.Status.choices)
    customer_no = django_filters.CharFilter(field_name="member__customer_no")
    tier = django_filters.CharFilter(field_name="tier__code")

    class Meta:
        model = TierOverride
        fields = ["status"]
