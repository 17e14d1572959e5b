"""The tier decision as one SQL statement, shared by evaluation runs and the simulator.

Both ask the same question for a range of member ids: given the tiers (as a JSON list, so the
simulator can pass proposed thresholds), the snapshots up to ``as_of`` and each member's current
tier, grace count and override, what tier does the member end up in? Evaluation then writes the
answer (state, history, messages) in the same statement; the simulator only counts it. Sharing
the text is what makes the simulator's counts equal a real run's.

What is guaranteed about the text:

* The SQL is static: it lives in ``members/sql/*.sql`` (package data, read once at import
  through :mod:`importlib.resources`, so an installed wheel works too) and is commented there,
  step by step. ``tier_decision.sql`` holds the decision's CTEs (ending with ``decided``);
  ``tier_simulate.sql`` and ``tier_evaluate.sql`` put them after their ``WITH``;
  ``tier_members_changing.sql`` and ``tier_members_all.sql`` are the two ways of choosing who
  is decided one by one (see below).
* The files' convention: whole-line ``--`` comments are documentation, dropped at load; a
  ``{name}`` is a *hole*, the only braces allowed; ``%(name)s`` is a bound parameter. Loading
  refuses any other brace and any comment after SQL on a line; filling refuses a missing or
  unknown hole and a result with a brace left.
* Only the ladder's shape reaches the SQL text, and only as integers: the holes are filled
  from a :class:`Ladder` of :class:`TierRule` objects, frozen and validated when built (types,
  the model's ranges for ranks, windows and grace periods, the model's pattern for codes, the
  known choices for rule and downgrade mode), with fixed SQL fragments in which the only values
  are tier ids, ranks, window lengths and grace periods (``int``), and the keywords ``true``,
  ``false`` and ``NULL``; parameter names carry a rank or a window length (``%(t20_aum)s``,
  ``%(w3_start)s``). Every threshold and date, and the tier list itself, is a bound parameter.
  So a tier's values, proposed or stored, can change what the statement decides, never what
  it says.

The holes of ``tier_decision.sql`` (the file lists them too): ``window_figures`` (one filtered
aggregate per distinct window of the active tiers), ``qualified_rank`` (a ``WHEN`` per active
tier, highest rank first, over the thresholds' parameters), ``window_columns``,
``members_who_can_change`` (one of the two fixed files), and per-tier lookups ``rank_by_tier_id``,
``active_by_tier_id``, ``grace_by_tier_id``, ``to_qualified_by_tier_id``, ``lower_id_by_tier_id``,
``tier_id_by_rank``, ``avg_aum_by_tier_id``, ``contribution_by_tier_id`` (``WHEN <int> THEN
<int, column or keyword>``). The other two files have one hole, ``decision``.

Only members who can change are decided one by one: those with a state row (placed before,
counting grace or overridden) and those who qualify above the lowest tier. Everyone else has no
state and stays in the lowest tier; they are only counted (``population``). On a first run
that is most members, and the per-member steps run for the rest only. (When a tier above
the lowest has no thresholds, everyone qualifies for it and everyone is decided.)

Decision per member (``action``):

- ``override`` / ``hold``: an approved override has not expired: the member is (or stays) in it.
- ``override_expired``: the override in force ran out: straight to the qualified tier (also
  when this ``as_of`` was evaluated before: the expiry is new, the grace count is not touched).
- ``skip``: the member's state was already written by an evaluation of this or a later date,
  so re-running an ``as_of`` changes nothing.
- ``tier_retired``: the member's tier was deactivated: straight to the qualified tier.
- ``upgrade``: qualified above the current tier: at once.
- ``pass``: qualified for the current tier: the grace count resets.
- ``fail``: qualified below, grace periods not yet used up: keep the tier, count one more.
- ``downgrade``: the grace periods are used up: one step down or to the qualified tier, as the
  current tier's ``downgrade_mode`` says.
"""

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.resources import files
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from loyalty.timeutils import window_start
from members.models import (
    AssetSnapshot,
    Member,
    MemberTier,
    Message,
    Tier,
    TierHistory,
    TierOverride,
    tier_code_validator,
)

# A PostgreSQL advisory lock (transaction scope): shared by evaluation chunks (they touch
# disjoint members), exclusive for an override being applied, so an override approved during a
# run is never overwritten by a chunk that read the member's state before it.
TIER_STATE_LOCK = 0x7469_6572_7301

# The tables the files name, checked against the models at import.
_TABLES = {
    Member: "members_member",
    AssetSnapshot: "members_assetsnapshot",
    MemberTier: "members_membertier",
    TierHistory: "members_tierhistory",
    Message: "members_message",
    TierOverride: "members_tieroverride",
}
for _model, _table in _TABLES.items():
    if _model._meta.db_table != _table:
        raise ImproperlyConfigured(
            f"members/sql/ names the table {_table!r}, but {_model.__name__} is stored in "
            f"{_model._meta.db_table!r}"
        )


# --- The static SQL ----------------------------------------------------------------------

_HOLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class SqlTemplate:
    """A file of ``members/sql/``: its SQL without the documentation comments, and its holes."""

    name: str
    text: str
    holes: frozenset[str]

    @classmethod
    def load(cls, name: str) -> "SqlTemplate":
        source = (files("members") / "sql" / name).read_text(encoding="utf-8")
        lines = []
        for number, line in enumerate(source.splitlines(), start=1):
            if line.lstrip().startswith("--"):
                continue
            if "--" in line:
                raise ImproperlyConfigured(f"{name}, line {number}: a comment after SQL")
            if set(_HOLE.sub("", line)) & {"{", "}"}:
                raise ImproperlyConfigured(f"{name}, line {number}: a brace that is not a hole")
            lines.append(line)
        text = "\n".join(lines).strip("\n") + "\n"
        return cls(name=name, text=text, holes=frozenset(_HOLE.findall(text)))

    def fill(self, **values: str) -> str:
        """The SQL with every hole replaced by its value (each hole needs one, and only holes
        take one); the result has no brace left."""
        missing, unknown = self.holes - values.keys(), values.keys() - self.holes
        if missing or unknown:
            raise ValueError(
                f"{self.name}: holes without a value {sorted(missing)}, "
                f"values without a hole {sorted(unknown)}"
            )
        sql = _HOLE.sub(lambda match: values[match.group(1)], self.text)
        if "{" in sql or "}" in sql:
            raise ValueError(f"{self.name}: a brace is left after filling")
        return sql


DECISION = SqlTemplate.load("tier_decision.sql")
MEMBERS_CHANGING = SqlTemplate.load("tier_members_changing.sql")
MEMBERS_ALL = SqlTemplate.load("tier_members_all.sql")
SIMULATE = SqlTemplate.load("tier_simulate.sql")
EVALUATE = SqlTemplate.load("tier_evaluate.sql")


# --- The rules that fill the holes -------------------------------------------------------


class TierRuleInvalid(ValueError):
    """A tier's values (stored or proposed) that the decision SQL cannot be built from."""


def _model_range(name: str) -> tuple[int, int]:
    """The inclusive range ``Tier.<name>`` accepts: its validators' (the field type's own range
    included, which Django adds to an integer field's validators)."""
    model_field = Tier._meta.get_field(name)
    if not isinstance(model_field, models.Field):
        raise ImproperlyConfigured(f"Tier.{name} is not a concrete field")
    validators = model_field.validators
    low = max(int(v.limit_value) for v in validators if isinstance(v, MinValueValidator))
    high = min(int(v.limit_value) for v in validators if isinstance(v, MaxValueValidator))
    return low, high


RANK_RANGE = _model_range("rank")
WINDOW_MONTHS_RANGE = _model_range("window_months")
GRACE_PERIODS_RANGE = _model_range("grace_periods")
# A tier's primary key: a BigAutoField.
ID_RANGE = (1, 2**63 - 1)
# The model's pattern for codes (its validator's), matched in full.
_code_regex = tier_code_validator.regex
TIER_CODE = re.compile(_code_regex if isinstance(_code_regex, str) else _code_regex.pattern)
RULES = frozenset(Tier.Rule.values)
DOWNGRADE_MODES = frozenset(Tier.DowngradeMode.values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class TierRule:
    """One tier as the decision sees it, checked when built: ``id``, ``rank``,
    ``window_months`` and ``grace_periods`` are ``int`` within the model's ranges, ``code``
    matches the model's pattern, the thresholds are ``None`` or a finite, non-negative
    ``Decimal``, ``rule`` and ``downgrade_mode`` are known choices and ``active`` a ``bool``.
    Raises :class:`TierRuleInvalid` naming the tier and the value otherwise."""

    id: int
    code: str
    rank: int
    min_avg_aum: Decimal | None
    min_contribution: Decimal | None
    rule: str
    window_months: int
    grace_periods: int
    downgrade_mode: str
    active: bool

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not TIER_CODE.fullmatch(self.code):
            raise TierRuleInvalid(
                f"tier code {self.code!r}: 1 to 32 capital letters, digits or '_', "
                "starting with a letter"
            )
        for name, (low, high) in (
            ("id", ID_RANGE),
            ("rank", RANK_RANGE),
            ("window_months", WINDOW_MONTHS_RANGE),
            ("grace_periods", GRACE_PERIODS_RANGE),
        ):
            value = getattr(self, name)
            if not _is_int(value):
                raise TierRuleInvalid(f"tier {self.code}: {name} {value!r} is not an int")
            if not low <= value <= high:
                raise TierRuleInvalid(f"tier {self.code}: {name} {value} is outside {low}..{high}")
        for name in ("min_avg_aum", "min_contribution"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, Decimal) and value.is_finite() and value >= 0
            ):
                raise TierRuleInvalid(
                    f"tier {self.code}: {name} {value!r} is not None or a Decimal >= 0"
                )
        if self.rule not in RULES:
            raise TierRuleInvalid(f"tier {self.code}: unknown rule {self.rule!r}")
        if self.downgrade_mode not in DOWNGRADE_MODES:
            raise TierRuleInvalid(
                f"tier {self.code}: unknown downgrade mode {self.downgrade_mode!r}"
            )
        if not isinstance(self.active, bool):
            raise TierRuleInvalid(f"tier {self.code}: active {self.active!r} is not a bool")

    @classmethod
    def from_payload(cls, values: Mapping[str, Any]) -> "TierRule":
        """From a payload dict (``members.services.evaluation._tier_payload``'s: thresholds as
        decimal strings); only the thresholds are converted, everything else is checked as is."""

        def threshold(value: Any) -> Any:
            if isinstance(value, str | int) and not isinstance(value, bool):
                try:
                    return Decimal(value)
                except ArithmeticError:
                    return value
            return value

        return cls(
            id=values["id"],
            code=values["code"],
            rank=values["rank"],
            min_avg_aum=threshold(values["min_avg_aum"]),
            min_contribution=threshold(values["min_contribution"]),
            rule=values["rule"],
            window_months=values["window_months"],
            grace_periods=values["grace_periods"],
            downgrade_mode=values["downgrade_mode"],
            active=values["active"],
        )

    @property
    def has_thresholds(self) -> bool:
        return self.min_avg_aum is not None or self.min_contribution is not None


def _when(pairs: Iterable[tuple[int, int | bool | None]]) -> str:
    """``WHEN <int> THEN <int, true, false or NULL>`` ...: nothing but integers and keywords."""

    def literal(value: int | bool | None) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        return f"{int(value):d}"

    return " ".join(f"WHEN {int(key):d} THEN {literal(value)}" for key, value in pairs)


@dataclass(frozen=True, slots=True)
class Ladder:
    """The tiers an evaluation or simulation decides with (proposals applied), as
    :class:`TierRule` objects in the given order, with what the SQL needs derived once:
    ``active`` (the active rules by rank, at least one), ``windows`` (their distinct window
    lengths, ascending), ``lower_id`` (per tier id: the highest active tier below it) and
    ``open_rank`` (the highest active rank without thresholds: everyone qualifies for it; the
    lowest rank when no tier above the lowest is open). Ids, codes and ranks are unique."""

    tiers: tuple[TierRule, ...]
    active: tuple[TierRule, ...] = field(init=False)
    windows: tuple[int, ...] = field(init=False)
    lower_id: Mapping[int, int | None] = field(init=False)
    open_rank: int = field(init=False)

    def __post_init__(self) -> None:
        if not all(isinstance(tier, TierRule) for tier in self.tiers):
            raise TierRuleInvalid("a ladder is made of TierRule objects")
        for name in ("id", "code", "rank"):
            values = [getattr(tier, name) for tier in self.tiers]
            if len(set(values)) != len(values):
                raise TierRuleInvalid(f"two tiers have the same {name}")
        active = tuple(sorted((t for t in self.tiers if t.active), key=lambda t: t.rank))
        if not active:
            raise TierRuleInvalid("no active tier")
        lower_id = {
            tier.id: next((a.id for a in reversed(active) if a.rank < tier.rank), None)
            for tier in self.tiers
        }
        open_ranks = [t.rank for t in active if not t.has_thresholds]
        object.__setattr__(self, "active", active)
        object.__setattr__(self, "windows", tuple(sorted({t.window_months for t in active})))
        object.__setattr__(self, "lower_id", lower_id)
        object.__setattr__(self, "open_rank", max([active[0].rank, *open_ranks]))

    @classmethod
    def from_payload(cls, tiers: Iterable[Mapping[str, Any]]) -> "Ladder":
        return cls(tiers=tuple(TierRule.from_payload(values) for values in tiers))

    @property
    def lowest(self) -> TierRule:
        return self.active[0]

    def holes(self) -> dict[str, str]:
        """The fragments for ``tier_decision.sql``'s holes."""
        several = len(self.windows) > 1
        figures = []
        for months in self.windows:
            only = f" FILTER (WHERE s.as_of >= %(w{months:d}_start)s)" if several else ""
            figures.append(
                f"avg(s.aum){only} AS aum_w{months:d}, "
                f"sum(s.contribution){only} AS contribution_w{months:d}"
            )
        conditions = []
        for tier in reversed(self.active):
            rank, months = tier.rank, tier.window_months
            tests = []
            if tier.min_avg_aum is not None:
                tests.append(f"a.aum_w{months:d} >= %(t{rank:d}_aum)s")
            if tier.min_contribution is not None:
                tests.append(f"a.contribution_w{months:d} >= %(t{rank:d}_contribution)s")
            joiner = " AND " if tier.rule == Tier.Rule.ALL else " OR "
            condition = f"COALESCE({joiner.join(tests)}, false)" if tests else "true"
            conditions.append(f"WHEN {condition} THEN {rank:d}")
        in_window = [t for t in self.tiers if t.window_months in self.windows]
        every = self.tiers
        return {
            "window_figures": ", ".join(figures),
            "qualified_rank": " ".join(conditions),
            "window_columns": ", ".join(
                f"a.aum_w{m:d}, a.contribution_w{m:d}" for m in self.windows
            ),
            "members_who_can_change": (
                MEMBERS_CHANGING if self.open_rank == self.lowest.rank else MEMBERS_ALL
            ).fill(),
            "rank_by_tier_id": _when((t.id, t.rank) for t in every),
            "active_by_tier_id": _when((t.id, t.active) for t in every),
            "grace_by_tier_id": _when((t.id, t.grace_periods) for t in every),
            "to_qualified_by_tier_id": _when(
                (t.id, t.downgrade_mode == Tier.DowngradeMode.TO_QUALIFIED) for t in every
            ),
            "lower_id_by_tier_id": _when((t.id, self.lower_id[t.id]) for t in every),
            "tier_id_by_rank": _when((t.rank, t.id) for t in self.active),
            # Every active tier's window is in ``windows``: never empty.
            "avg_aum_by_tier_id": " ".join(
                f"WHEN {t.id:d} THEN aum_w{t.window_months:d}" for t in in_window
            ),
            "contribution_by_tier_id": " ".join(
                f"WHEN {t.id:d} THEN contribution_w{t.window_months:d}" for t in in_window
            ),
        }

    def params(self, as_of: dt.date) -> dict[str, Any]:
        """The decision's bound parameters (the caller adds ``lo``, ``hi`` and ``now``)."""
        rows = [
            {
                "id": t.id,
                "code": t.code,
                "rank": t.rank,
                "window_months": t.window_months,
                "grace_periods": t.grace_periods,
                "downgrade_mode": t.downgrade_mode,
                "active": t.active,
                "lower_id": self.lower_id[t.id],
            }
            for t in self.tiers
        ]
        params: dict[str, Any] = {
            "tiers": json.dumps(rows),
            "as_of": as_of,
            "lowest_id": self.lowest.id,
            "lowest_rank": self.lowest.rank,
            "window_start": window_start(as_of, self.windows[-1]),
        }
        for months in self.windows:
            params[f"w{months:d}_start"] = window_start(as_of, months)
        for tier in reversed(self.active):
            if tier.min_avg_aum is not None:
                params[f"t{tier.rank:d}_aum"] = tier.min_avg_aum
            if tier.min_contribution is not None:
                params[f"t{tier.rank:d}_contribution"] = tier.min_contribution
        params["open_rank"] = self.open_rank
        return params


# --- The statements ----------------------------------------------------------------------


def decision_sql(*, tiers: list[dict[str, Any]], as_of: dt.date) -> tuple[str, dict[str, Any]]:
    """The decision CTEs (ending with ``decided``) for ``tiers`` (payload dicts, proposals
    applied) and their parameters; the caller adds ``lo``, ``hi`` and ``now``.

    Raises :class:`TierRuleInvalid` (a ``ValueError``) for values the SQL cannot be built from.
    """
    ladder = Ladder.from_payload(tiers)
    return DECISION.fill(**ladder.holes()), ladder.params(as_of)


def simulate_sql(*, tiers: list[dict[str, Any]], as_of: dt.date) -> tuple[str, dict[str, Any]]:
    """The simulator's statement (``tier_simulate.sql``) and its parameters."""
    ctes, params = decision_sql(tiers=tiers, as_of=as_of)
    return SIMULATE.fill(decision=ctes), params


def evaluate_sql(*, tiers: list[dict[str, Any]], as_of: dt.date) -> tuple[str, dict[str, Any]]:
    """An evaluation chunk's statement (``tier_evaluate.sql``) and its parameters; the caller
    also adds ``run_pk``, ``run_id`` and ``templates``."""
    ctes, params = decision_sql(tiers=tiers, as_of=as_of)
    return EVALUATE.fill(decision=ctes), params
