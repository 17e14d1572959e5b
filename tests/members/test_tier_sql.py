"""The tier decision SQL: static files with holes, filled only from validated rule objects.

What the statement decides is held by the evaluation, simulator and property tests; these hold
how it is built: the files load, every hole is filled, bad tier values are refused before any
SQL exists, and nothing but integers from the rules reaches the SQL text.
"""

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from members.tier_sql import (
    DECISION,
    EVALUATE,
    MEMBERS_ALL,
    MEMBERS_CHANGING,
    SIMULATE,
    Ladder,
    SqlTemplate,
    TierRule,
    TierRuleInvalid,
    decision_sql,
    evaluate_sql,
    simulate_sql,
)

AS_OF = dt.date(2026, 10, 31)

# Thresholds no integer of the rules resembles, so finding one in the SQL text would show.
AUM = ("987654.32", "7654321.98")
CONTRIBUTION = ("4321.09", "65432.17")


def tier(**values: Any) -> dict[str, Any]:
    """A payload dict as ``members.services.evaluation._tier_payload`` makes it."""
    return {
        "id": 1,
        "code": "STANDARD",
        "rank": 10,
        "window_months": 3,
        "min_avg_aum": None,
        "min_contribution": None,
        "rule": "any",
        "grace_periods": 2,
        "downgrade_mode": "one_step",
        "active": True,
    } | values


def one_window() -> list[dict[str, Any]]:
    return [
        tier(),
        tier(id=7, code="GOLD", rank=20, min_avg_aum=AUM[0], min_contribution=CONTRIBUTION[0]),
        tier(
            id=9,
            code="PLATINUM",
            rank=30,
            min_avg_aum=AUM[1],
            min_contribution=CONTRIBUTION[1],
            rule="all",
            downgrade_mode="to_qualified",
            grace_periods=4,
        ),
    ]


def multi_window() -> list[dict[str, Any]]:
    return [
        tier(id=3, window_months=1),
        tier(id=11, code="GOLD", rank=20, min_avg_aum=AUM[0], window_months=6),
        tier(id=12, code="RETIRED", rank=25, min_contribution=CONTRIBUTION[1], active=False),
        tier(
            id=13,
            code="DIAMOND",
            rank=40,
            min_contribution=CONTRIBUTION[0],
            window_months=12,
            grace_periods=3,
        ),
    ]


def open_above_lowest() -> list[dict[str, Any]]:
    """A tier above the lowest without thresholds: everyone is decided."""
    return [
        tier(),
        tier(id=2, code="OPEN", rank=20),
        tier(id=4, code="GOLD", rank=30, min_avg_aum=AUM[0]),
    ]


def rule_integers(tiers: list[dict[str, Any]]) -> set[str]:
    return {
        str(t[name]) for t in tiers for name in ("id", "rank", "window_months", "grace_periods")
    }


# --- The files ---------------------------------------------------------------------------


def test_the_files_load_with_their_holes():
    assert DECISION.holes == {
        "window_figures",
        "qualified_rank",
        "window_columns",
        "members_who_can_change",
        "rank_by_tier_id",
        "active_by_tier_id",
        "grace_by_tier_id",
        "to_qualified_by_tier_id",
        "lower_id_by_tier_id",
        "tier_id_by_rank",
        "avg_aum_by_tier_id",
        "contribution_by_tier_id",
    }
    assert SIMULATE.holes == EVALUATE.holes == {"decision"}
    assert MEMBERS_CHANGING.holes == MEMBERS_ALL.holes == frozenset()
    for template in (DECISION, SIMULATE, EVALUATE, MEMBERS_CHANGING, MEMBERS_ALL):
        # The documentation comments stay in the files, not in the statements.
        assert "--" not in template.text
        assert template.text.strip()
    assert "OFFSET 0" in DECISION.text
    assert DECISION.text.lstrip().startswith("tiers AS (")


@pytest.mark.parametrize("tiers", [one_window(), multi_window(), open_above_lowest()])
@pytest.mark.parametrize("build", [simulate_sql, evaluate_sql])
def test_filling_leaves_no_hole(build, tiers):
    sql, params = build(tiers=tiers, as_of=AS_OF)
    assert "{" not in sql
    assert "}" not in sql
    assert sql.lstrip().startswith("WITH tiers AS (")
    # Every parameter the text names is given (the caller adds lo, hi, now; a run the rest),
    # and only a single window's own start goes unused (its aggregate needs no FILTER).
    named = set(re.findall(r"%\((\w+)\)s", sql))
    caller = {"lo", "hi", "now"}
    if build is evaluate_sql:
        caller |= {"run_pk", "run_id", "templates"}
    assert named - caller <= set(params)
    assert all(re.fullmatch(r"w\d+_start", name) for name in set(params) - named)


def test_a_template_refuses_a_missing_or_unknown_hole():
    template = SqlTemplate(name="t.sql", text="SELECT {a} FROM {b}\n", holes=frozenset("ab"))
    assert template.fill(a="1", b="x") == "SELECT 1 FROM x\n"
    with pytest.raises(ValueError, match=r"holes without a value \['b'\]"):
        template.fill(a="1")
    with pytest.raises(ValueError, match=r"values without a hole \['c'\]"):
        template.fill(a="1", b="x", c="2")
    with pytest.raises(ValueError, match="a brace is left"):
        template.fill(a="{b}", b="x")


# --- The rule objects --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"window_months": "3"}, r"window_months '3' is not an int"),
        ({"window_months": 3.0}, r"window_months 3.0 is not an int"),
        ({"window_months": True}, r"window_months True is not an int"),
        ({"window_months": 0}, r"window_months 0 is outside 1..24"),
        ({"window_months": 25}, r"window_months 25 is outside 1..24"),
        ({"rank": -1}, r"rank -1 is outside 0..32767"),
        ({"rank": "10 THEN 99"}, r"rank '10 THEN 99' is not an int"),
        ({"grace_periods": 0}, r"grace_periods 0 is outside 1..24"),
        ({"id": 0}, r"id 0 is outside"),
        ({"id": None}, r"id None is not an int"),
        ({"code": "GOLD'; DROP TABLE members_member; --"}, r"tier code .*capital letters"),
        ({"code": "gold"}, r"tier code 'gold'"),
        ({"code": "GOLD\n"}, r"tier code 'GOLD\\n'"),
        ({"min_avg_aum": "-1"}, r"min_avg_aum Decimal\('-1'\) is not None or a Decimal >= 0"),
        ({"min_avg_aum": "1 OR true"}, r"min_avg_aum '1 OR true' is not None or a Decimal"),
        ({"min_contribution": "NaN"}, r"min_contribution Decimal\('NaN'\)"),
        ({"min_contribution": 1.5}, r"min_contribution 1.5 is not None or a Decimal"),
        ({"rule": "any OR 1=1"}, r"unknown rule"),
        ({"downgrade_mode": "down"}, r"unknown downgrade mode 'down'"),
        ({"active": 1}, r"active 1 is not a bool"),
    ],
)
def test_a_rule_refuses_bad_values(values, message):
    with pytest.raises(TierRuleInvalid, match=message):
        TierRule.from_payload(tier(**values))
    # So does the public interface, before any SQL exists (and it is a ValueError).
    with pytest.raises(ValueError, match=message):
        decision_sql(tiers=[*one_window()[1:], tier(**values)], as_of=AS_OF)


def test_a_rule_is_frozen_and_typed():
    rule = TierRule.from_payload(tier(min_avg_aum="100.50"))
    assert rule.min_avg_aum == Decimal("100.50")
    assert rule.min_contribution is None
    with pytest.raises(AttributeError):
        rule.rank = 99  # type: ignore[misc]  # frozen: the point of the test


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([tier(active=False)], "no active tier"),
        ([tier(), tier(id=2, code="GOLD")], "same rank"),
        ([tier(), tier(code="GOLD", rank=20)], "same id"),
        ([tier(), tier(id=2, rank=20)], "same code"),
    ],
)
def test_a_ladder_refuses_what_cannot_be_decided(tiers, message):
    with pytest.raises(TierRuleInvalid, match=message):
        Ladder.from_payload(tiers)


def test_a_ladder_derives_what_the_sql_needs():
    ladder = Ladder.from_payload(multi_window())
    assert [t.code for t in ladder.active] == ["STANDARD", "GOLD", "DIAMOND"]
    assert ladder.windows == (1, 6, 12)
    assert ladder.lower_id == {3: None, 11: 3, 12: 11, 13: 11}
    assert ladder.open_rank == 10
    assert Ladder.from_payload(open_above_lowest()).open_rank == 20


# --- Only integers from the rules in the text --------------------------------------------


@pytest.mark.parametrize("tiers", [one_window(), multi_window()], ids=["one", "multi"])
def test_only_integers_from_the_rules_reach_the_sql_text(tiers):
    ladder = Ladder.from_payload(tiers)
    allowed = rule_integers(tiers)
    holes = ladder.holes()
    # The one hole that is a whole template, not integers from the rules.
    assert holes.pop("members_who_can_change") in (MEMBERS_CHANGING.fill(), MEMBERS_ALL.fill())
    assert holes
    for hole, fragment in holes.items():
        assert set(re.findall(r"\d+", fragment)) <= allowed, hole
        # No string literal, statement end, comment or brace: integers and keywords only.
        assert not set(fragment) & set("'\";{}"), hole
        assert "--" not in fragment
        assert "/*" not in fragment

    sql, params = simulate_sql(tiers=tiers, as_of=AS_OF)
    for value in (*AUM, *CONTRIBUTION):
        assert value not in sql
        assert value.split(".")[0] not in sql
        assert value.split(".")[1] not in sql
    thresholds = {k: v for k, v in params.items() if re.fullmatch(r"t\d+_(aum|contribution)", k)}
    assert all(isinstance(v, Decimal) for v in thresholds.values())
    assert {str(v) for v in thresholds.values()} == {
        str(t[name])
        for t in tiers
        if t["active"]
        for name in ("min_avg_aum", "min_contribution")
        if t[name] is not None
    }
    assert AS_OF.isoformat() not in sql
    assert params["as_of"] == AS_OF


@pytest.mark.parametrize("tiers", [one_window(), multi_window()], ids=["one", "multi"])
def test_thresholds_and_dates_change_the_parameters_not_the_text(tiers):
    other = [
        t
        | {
            "min_avg_aum": None if t["min_avg_aum"] is None else "1.00",
            "min_contribution": None if t["min_contribution"] is None else "2.00",
        }
        for t in tiers
    ]
    sql, params = evaluate_sql(tiers=tiers, as_of=AS_OF)
    other_sql, other_params = evaluate_sql(tiers=other, as_of=dt.date(2025, 3, 31))
    assert sql == other_sql
    assert params != other_params


def test_one_window_aggregates_without_filter_several_with_one_each():
    one, _ = decision_sql(tiers=one_window(), as_of=AS_OF)
    assert "FILTER (WHERE s.as_of" not in one
    assert "avg(s.aum) AS aum_w3, sum(s.contribution) AS contribution_w3" in one
    multi, params = decision_sql(tiers=multi_window(), as_of=AS_OF)
    for months in (1, 6, 12):
        assert f"avg(s.aum) FILTER (WHERE s.as_of >= %(w{months}_start)s) AS aum_w{months}" in multi
        assert f"w{months}_start" in params
    assert params["window_start"] == params["w12_start"] == dt.date(2025, 11, 1)


def test_the_qualified_rank_tests_tiers_highest_first():
    ladder = Ladder.from_payload(one_window())
    assert ladder.holes()["qualified_rank"] == (
        "WHEN COALESCE(a.aum_w3 >= %(t30_aum)s AND a.contribution_w3 >= %(t30_contribution)s, "
        "false) THEN 30 "
        "WHEN COALESCE(a.aum_w3 >= %(t20_aum)s OR a.contribution_w3 >= %(t20_contribution)s, "
        "false) THEN 20 "
        "WHEN true THEN 10"
    )


# --- The server accepts every variant ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("tiers", [one_window(), multi_window(), open_above_lowest()])
def test_the_server_parses_every_variant(tiers):
    extra = {"lo": 0, "hi": 10, "now": dt.datetime.now(dt.UTC)}
    run = {"run_pk": 1, "run_id": str(uuid.uuid4()), "templates": "[]"}
    with connection.cursor() as cursor:
        for build, more in ((simulate_sql, {}), (evaluate_sql, run)):
            sql, params = build(tiers=tiers, as_of=AS_OF)
            cursor.execute("EXPLAIN " + sql, params | extra | more)
            assert cursor.fetchall()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("SELECT 1 -- a comment after SQL", "line 2: a comment after SQL"),
        ("SELECT '{}'", "line 2: a brace that is not a hole"),
        ("SELECT {Not_a_hole}", "line 2: a brace that is not a hole"),
    ],
)
def test_loading_refuses_what_the_convention_does_not_allow(tmp_path, monkeypatch, line, message):
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "bad.sql").write_text(f"-- {{documented}} %\n{line}\n", encoding="utf-8")
    monkeypatch.setattr("members.tier_sql.files", lambda package: tmp_path)
    with pytest.raises(ImproperlyConfigured, match=f"bad.sql, {message}"):
        SqlTemplate.load("bad.sql")
    (tmp_path / "sql" / "good.sql").write_text("-- {documented} %\nSELECT {a}\n", encoding="utf-8")
    assert SqlTemplate.load("good.sql") == SqlTemplate(
        name="good.sql", text="SELECT {a}\n", holes=frozenset({"a"})
    )
