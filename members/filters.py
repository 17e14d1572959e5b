import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member, Message, TierOverride


class MemberFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Member.Status.choices)
    aum_min = django_filters.NumberFilter(
        field_name="latest_aum", lookup_expr="gte", label=_("AUM at least")
    )
    aum_max = django_filters.NumberFilter(
        field_name="latest_aum", lookup_expr="lte", label=_("AUM at most")
    )
    joined_from = django_filters.DateFilter(field_name="joined_at", lookup_expr="gte")
    joined_to = django_filters.DateFilter(field_name="joined_at", lookup_expr="lte")
    city = django_filters.CharFilter()
    tier = django_filters.CharFilter(field_name="tier_code", label=_("Current tier code"))
    branch_code = django_filters.CharFilter()
    search = django_filters.CharFilter(
        method="filter_search", label=_("Customer number, name or email")
    )

    class Meta:
        model = Member
        fields = ["status", "city", "branch_code"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(customer_no__iexact=value) | Q(name__icontains=value) | Q(email__iexact=value)
        )


class MessageFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")
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
