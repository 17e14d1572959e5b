"""The tier simulator: what an evaluation would do with proposed thresholds, writing nothing.

It runs the evaluation's own decision SQL (grace periods, overrides and re-runs included) in a
read-only transaction, so the counts are what a run would produce and the database refuses any
write.
"""

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from members.errors import NoActiveTiers, TierNotFound
from members.models import Tier
from members.services.evaluation import _tier_payload, tier_default_as_of
from members.tier_sql import simulate_sql

# 2**63 - 1: the upper end of a member id range that means "all members".
_ALL_IDS = 9_223_372_036_854_775_807


def tiers_simulate(
    *, as_of: dt.date | None = None, proposals: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What an evaluation as of ``as_of`` would do if the tiers had the ``proposals`` (per tier
    code: any of ``min_avg_aum``, ``min_contribution``, ``rule``, ``window_months``,
    ``grace_periods``, ``downgrade_mode``).

    Runs the evaluation's own decision SQL (grace periods, overrides and re-runs included) in a
    read-only transaction: the counts are what a run would produce, and nothing is written.
    Returns ``as_of``, ``members``, ``tiers`` (per active tier: ``members`` after the run,
    ``qualified`` on the thresholds alone) and ``moves`` (``up``, ``down``, ``same``).
    """
    as_of = as_of or tier_default_as_of()
    proposals = proposals or {}
    tiers = list(Tier.objects.order_by("rank"))
    unknown = set(proposals) - {tier.code for tier in tiers}
    if unknown:
        raise TierNotFound()
    if not any(tier.active for tier in tiers):
        raise NoActiveTiers()
    payload = [_tier_payload(tier, proposals.get(tier.code)) for tier in tiers]
    sql, params = simulate_sql(tiers=payload, as_of=as_of)
    params.update(lo=0, hi=_ALL_IDS, now=timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    after = {code: members for kind, code, members, *_ in rows if kind == "after"}
    qualified = {code: members for kind, code, members, *_ in rows if kind == "qualified"}
    moves = {"up": 0, "down": 0, "same": 0}
    for kind, _code, _members, up, down, same in rows:
        if kind == "after":
            moves["up"] += up
            moves["down"] += down
            moves["same"] += same
    return {
        "as_of": as_of,
        "members": sum(after.values()),
        "tiers": [
            {
                "code": values["code"],
                "name": tier.name,
                "rank": values["rank"],
                "min_avg_aum": values["min_avg_aum"],
                "min_contribution": values["min_contribution"],
                "rule": values["rule"],
                "members": after.get(values["code"], 0),
                "qualified": qualified.get(values["code"], 0),
            }
            for tier, values in zip(tiers, payload, strict=True)
            if values["active"]
        ],
        "moves": moves,
    }
