"""A segment's rule: its grammar, declared once, and the SQL that selects its members.

A rule is an object; every key given must hold (AND), and a list matches any of its values:

- ``tiers``: tier codes (the member's current tier; a member without a tier state holds the
  lowest active tier, as everywhere);
- ``aum_min``, ``aum_max``, ``contribution_min``: the latest asset snapshot's figures;
- ``age_min``, ``age_max``: whole years on the business day (members without a birth date
  match neither);
- ``genders``, ``cities``, ``branch_codes``, ``credit_grades``, ``risk_levels``: profile fields;
- ``holds``: any of ``deposits``, ``wealth``, ``funds``, ``insurance``, ``loans`` above zero in
  the latest snapshot;
- ``inactive_days_min``: no transaction in the last N days and a member for at least N days;
- ``value_score_min``, ``churn_risk``: the member's customer value as last refreshed
  (``MemberValue``); a member not yet scored has no score and no churn risk.

What holds:

- :class:`SegmentRule` is the grammar: the API nests it (errors name the bad part,
  ``rule.age_min``), the admin and the services run it through :func:`segment_rule_clean`. An
  unknown key, a value of the wrong type or range, an unknown tier code or a minimum above its
  maximum is refused; nothing is stored for a refused rule.
- A stored rule is the grammar's own rendering of what it accepted (amounts as strings with
  two places), so the same rule always reads the same.
- :func:`segment_members_sql` is the one translation of a rule into SQL, used by the preview,
  the refresh and the members list alike. Only active members are ever selected. Every value
  is a bound parameter; only the grammar's own keys decide the SQL's shape.
- ``inactive_days_min`` reads the transaction inbox (``points_transaction``, through its index
  on member and time) by SQL: the one place members reads a table of an app built on it.
"""

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from loyalty.api.serializers import MoneyField, StrictSerializer
from loyalty.timeutils import add_months, business_today
from members.models import Member, Tier

PRODUCTS = ("deposits", "wealth", "funds", "insurance", "loans")

# A condition on members ``m`` of another statement: in segment ``%(segment)s`` as its last
# refresh stored it (the bulk writers that target a segment refresh it first).
IN_SEGMENT_SQL = """
      AND EXISTS (SELECT 1 FROM members_segmentmember sm
                  WHERE sm.segment_id = %(segment)s AND sm.member_id = m.id)
"""


def _texts(max_length: int) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=max_length),
        min_length=1,
        max_length=500,
        required=False,
    )


def _choices(choices) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=choices),
        min_length=1,
        max_length=len(choices),
        required=False,
    )


class SegmentRule(StrictSerializer):
    """A segment's rule: every key given must hold; a list matches any of its values."""

    tiers = _texts(32)
    aum_min = MoneyField(min_value=0, required=False)
    aum_max = MoneyField(min_value=0, required=False)
    contribution_min = MoneyField(min_value=0, required=False)
    age_min = serializers.IntegerField(min_value=0, max_value=150, required=False)
    age_max = serializers.IntegerField(min_value=0, max_value=150, required=False)
    genders = _choices(Member.Gender.choices)
    cities = _texts(64)
    branch_codes = _texts(16)
    credit_grades = _texts(8)
    risk_levels = _choices(Member.RiskLevel.choices)
    holds = _choices([(product, product) for product in PRODUCTS])
    inactive_days_min = serializers.IntegerField(min_value=1, max_value=36_500, required=False)
    value_score_min = serializers.IntegerField(min_value=0, max_value=100, required=False)
    churn_risk = serializers.BooleanField(required=False)

    def validate_tiers(self, codes: list[str]) -> list[str]:
        known = set(Tier.objects.filter(code__in=codes).values_list("code", flat=True))
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise serializers.ValidationError(
                _("No tier has the code %(codes)s.") % {"codes": ", ".join(unknown)},
                code="unknown_tier",
            )
        return list(dict.fromkeys(codes))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        errors = {}
        for low, high in (("aum_min", "aum_max"), ("age_min", "age_max")):
            if low in attrs and high in attrs and attrs[low] > attrs[high]:
                errors[low] = [
                    serializers.ErrorDetail(
                        str(_("Must not be above %(high)s.") % {"high": high}), code="invalid"
                    )
                ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def segment_rule_clean(rule: Any) -> dict[str, Any]:
    """The stored form of ``rule``, or ``ValidationError`` naming each bad part
    (``{"rule.age_min": [...]}``)."""
    if not isinstance(rule, dict):
        raise ValidationError({"rule": _("A rule is an object of conditions.")})
    grammar = SegmentRule(data=rule)
    if not grammar.is_valid():
        raise ValidationError(
            {
                f"rule.{name}": [str(e) for e in _flat(errors)]
                for name, errors in grammar.errors.items()
            }
        )
    return dict(SegmentRule(grammar.validated_data).data)


def _flat(errors: Any) -> list[Any]:
    if isinstance(errors, dict):
        return [e for value in errors.values() for e in _flat(value)]
    if isinstance(errors, list):
        return [e for value in errors for e in _flat(value)]
    return [errors]


def _years_before(day: dt.date, years: int) -> dt.date:
    return add_months(day, -12 * years)


def segment_members_sql(rule: dict[str, Any], *, prefix: str = "r_") -> tuple[str, dict]:
    """``SELECT m.id ...`` of the active members ``rule`` (a stored, clean rule) selects, and
    its parameters (named ``<prefix>...``, so the query can be nested in another one)."""
    joins: list[str] = []
    where = ["m.status = 'active'"]
    params: dict[str, Any] = {}

    def bind(name: str, value: Any) -> str:
        params[prefix + name] = value
        return f"%({prefix}{name})s"

    if "tiers" in rule:
        tiers = list(Tier.objects.filter(code__in=rule["tiers"]).values_list("pk", flat=True))
        lowest = Tier.objects.filter(active=True).order_by("rank").values_list("pk", flat=True)
        joins.append("LEFT JOIN members_membertier mt ON mt.member_id = m.id")
        where.append(
            f"coalesce(mt.tier_id, {bind('lowest', lowest.first())}) = ANY({bind('tiers', tiers)})"
        )
    if {"aum_min", "aum_max", "contribution_min", "holds"} & set(rule):
        joins.append(
            "JOIN LATERAL (SELECT s.aum, s.contribution, "  # noqa: S608 - product columns
            + ", ".join(f"s.{product}" for product in PRODUCTS)
            + " FROM members_assetsnapshot s WHERE s.member_id = m.id"
            " ORDER BY s.as_of DESC LIMIT 1) s ON true"
        )
        for key, sql in (
            ("aum_min", "s.aum >="),
            ("aum_max", "s.aum <="),
            ("contribution_min", "s.contribution >="),
        ):
            if key in rule:
                where.append(f"{sql} {bind(key, rule[key])}::numeric")
        if "holds" in rule:
            where.append("(" + " OR ".join(f"s.{p} > 0" for p in rule["holds"]) + ")")
    today = business_today()
    if "age_min" in rule:
        where.append(f"m.birth_date <= {bind('born_by', _years_before(today, rule['age_min']))}")
    if "age_max" in rule:
        born_after = _years_before(today, rule["age_max"] + 1)
        where.append(f"m.birth_date > {bind('born_after', born_after)}")
    for key, column in (
        ("genders", "gender"),
        ("cities", "city"),
        ("branch_codes", "branch_code"),
        ("credit_grades", "credit_grade"),
        ("risk_levels", "risk_level"),
    ):
        if key in rule:
            where.append(f"m.{column} = ANY({bind(key, list(rule[key]))})")
    if "inactive_days_min" in rule:
        days = rule["inactive_days_min"]
        since = bind("active_since", timezone.now() - dt.timedelta(days=days))
        where.append(f"m.joined_at <= {bind('joined_by', today - dt.timedelta(days=days))}")
        where.append(
            "NOT EXISTS (SELECT 1 FROM points_transaction t"  # noqa: S608 - a bound parameter
            f" WHERE t.member_id = m.id AND t.occurred_at >= {since})"
        )
    if "value_score_min" in rule or "churn_risk" in rule:
        joins.append("LEFT JOIN members_membervalue v ON v.member_id = m.id")
        if "value_score_min" in rule:
            where.append(f"v.score >= {bind('score_min', rule['value_score_min'])}")
        if "churn_risk" in rule:
            where.append(f"coalesce(v.churn_risk, false) = {bind('churn', rule['churn_risk'])}")
    # The shape comes from the grammar's keys only; every value is a bound parameter.
    sql = "SELECT m.id FROM members_member m " + " ".join(joins)  # noqa: S608
    sql += " WHERE " + " AND ".join(where)
    return sql, params
