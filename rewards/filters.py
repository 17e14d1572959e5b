import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from members.filters import boolean_filter
from rewards.models import Category, Redemption, Reward


class RewardFilter(django_filters.FilterSet):
    """``category``, ``max_points`` (a price at most), and for members ``eligible``."""

    category = django_filters.ChoiceFilter(choices=Category.choices)
    max_points = extend_schema_field(
        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "description": _("Price at most")}
    )(
        django_filters.NumberFilter(
            field_name="points_price",
            lookup_expr="lte",
            label=_("Price at most"),
            min_value=0,
            max_value=2**31 - 1,
            step_size=1,
        )
    )
    eligible = boolean_filter(
        "ineligible_reason",
        "isnull",
        _("Only rewards I may redeem now (true) or only those I may not (false)"),
    )

    class Meta:
        model = Reward
        fields = ["category"]


class RedemptionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Redemption.Status.choices)
    reward_id = django_filters.UUIDFilter(field_name="reward_id")
    customer_no = django_filters.CharFilter(field_name="member__customer_no")

    class Meta:
        model = Redemption
        fields = ["status"]
