"""KPIs over HTTP: staff with ``insights.view_kpisnapshot`` (marketing, programme admins) read
the programme's figures for a period of business days, overall and per tier.

The definitions are :mod:`insights.services.kpis`'s; the CSV export is ``manage.py export_kpis``
and an admin action on KPI snapshots (the API answers JSON only).
"""

import datetime as dt

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from insights.selectors import COUNT, KPI_FIELDS, MONEY, POINTS, RATE
from insights.services.kpis import kpis_for_period
from loyalty.api.permissions import HasRolePermission
from loyalty.api.schema import nested_components
from loyalty.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from members.models import EARLIEST_AS_OF

# The longest period one request may ask for: a KPI call reads the whole ledger once, so a
# period's length costs nothing; the bound only keeps dates sane.
MAX_PERIOD_DAYS = 3660

_HELP = {
    "members_total": "Members at the end of the period (joined by `to`, not closed by then).",
    "members_new": "Members who joined within the period (also those who left inside it).",
    "growth_rate": "members_new / members at the start; null when there were none.",
    "members_active": "Members with a processed transaction or a redemption in the period.",
    "retention_rate": (
        "(members_total - new members still members at the end) / members at the start."
    ),
    "avg_aum": "Average AUM of the period's end members' latest snapshot by `to`.",
    "avg_contribution": "Average contribution of the same snapshots.",
    "points_issued": "Points earned and given as bonus in the period.",
    "points_redeemed": "Points redeemed in the period, less those refunded.",
    "points_expired": "Points expired or forfeited in the period.",
    "points_outstanding": "Points held at the end of `to` (the ledger's balance).",
    "points_liability": "points_outstanding x the programme's point value (gross).",
    "points_liability_net": "The liability net of expected breakage.",
    "breakage_rate": "Share of the outstanding points expected never to be redeemed.",
    "redemption_rate": "points_redeemed / points_issued.",
    "event_acceptance_rate": "Accepted (also attended, no-show) / invited, events starting in it.",
    "event_attendance_rate": "Attended / accepted (also attended, no-show).",
    "satisfaction_avg": "Average event feedback rating (1-5) given in the period.",
    "nps": "% of scores 9-10 minus % of 0-6: event feedback and survey answers (-100 to 100).",
    "recommended_redemption_rate": (
        "Redemptions in the period of a reward recommended to them, per member holding"
        " personalised recommendations."
    ),
    "holdout_redemption_rate": "The same per member of the holdout (popularity only).",
    "recommendation_uplift": (
        "recommended_redemption_rate - holdout_redemption_rate (may be negative)."
    ),
}


def _field(key: str, kind: str) -> serializers.Field:
    help_text = _HELP[key]
    if kind in (COUNT, POINTS):
        return serializers.IntegerField(help_text=help_text)
    if kind == MONEY:
        return serializers.DecimalField(
            max_digits=MONEY_MAX_DIGITS,
            decimal_places=MONEY_DECIMAL_PLACES,
            allow_null=key in ("avg_aum", "avg_contribution"),
            help_text=help_text,
        )
    if kind == RATE:
        return serializers.DecimalField(
            max_digits=18, decimal_places=4, allow_null=True, help_text=help_text
        )
    return serializers.DecimalField(
        max_digits=5, decimal_places=2, allow_null=True, help_text=help_text
    )


class KpiFiguresSerializer(serializers.Serializer):
    """The KPIs of one group (the programme, or one tier). Rates are decimal strings with 4
    places (``"0.1234"`` is 12.34%), null when their denominator is 0; money has 2 places."""

    def get_fields(self):
        return {key: _field(key, kind) for key, kind in KPI_FIELDS.items()}


class KpiOutputSerializer(KpiFiguresSerializer):
    """The programme's KPIs for the period, and ``by_tier``: the same per tier code."""

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField()
        fields["to"] = serializers.DateField()
        fields["by_tier"] = serializers.DictField(
            child=KpiFiguresSerializer(), help_text="Tier code -> its KPIs (current tiers)."
        )
        return fields


class KpiQuerySerializer(serializers.Serializer):
    """``from`` and ``to``: business dates (YYYY-MM-DD), both required, ``from <= to``."""

    def get_fields(self):
        return {"from": serializers.DateField(), "to": serializers.DateField()}

    def validate(self, attrs):
        if attrs["from"] < EARLIEST_AS_OF:
            raise serializers.ValidationError(
                {"from": _("The period starts before 2000-01-01.")}, code="too_early"
            )
        if attrs["to"] >= dt.date.max:
            raise serializers.ValidationError({"to": _("Not a valid end.")}, code="too_late")
        if attrs["from"] > attrs["to"]:
            raise serializers.ValidationError(
                {"to": _("The end of the period is before its start.")}, code="period_order"
            )
        if (attrs["to"] - attrs["from"]).days >= MAX_PERIOD_DAYS:
            raise serializers.ValidationError(
                {"to": _("The period is longer than ten years.")}, code="period_too_long"
            )
        return attrs


_PERIOD = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, required=True, description="First business day (YYYY-MM-DD)"
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.DATE,
        required=True,
        description="Last business day (YYYY-MM-DD), on or after `from`",
    ),
]


@extend_schema(tags=["insights"])
@nested_components
class KpiApi(APIView):
    """Staff: the programme's KPIs for ``[from, to]`` (business days, Asia/Shanghai), overall
    and per tier. A period that is exactly one closed month with a stored snapshot is read from
    it. 400 ``validation_error`` naming ``from`` or ``to`` when missing, not a date, or out of
    order."""

    permission_classes = [HasRolePermission]
    required_permissions = ("insights.view_kpisnapshot",)
    OutputSerializer = KpiOutputSerializer

    @extend_schema(parameters=_PERIOD, responses={200: OutputSerializer})
    def get(self, request):
        query = KpiQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day_from, day_to = query.validated_data["from"], query.validated_data["to"]
        figures = kpis_for_period(day_from=day_from, day_to=day_to)
        return Response(self.OutputSerializer({**figures, "from": day_from, "to": day_to}).data)
