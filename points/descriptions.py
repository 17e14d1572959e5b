"""What a ledger entry says it is, in the reader's language.

An entry stores its description once, as it was written (in the language the writer ran in;
the admin shows that text). The API renders it again, in the active language, from what the
entry records: the earning rule and the campaign that applied (by their names in that
language), the refunded transaction, the expiry date, the reward redeemed or refunded. Writers
and readers call the same functions, so the two texts can differ only in their language.
Staff-written text (an adjustment's reason, a bonus's description) is shown as written.
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from loyalty.translation import translated_text
from points.models import Campaign, Entry


def earning_text(*, rule: str, campaign: str | None) -> str:
    """Names every rule and campaign that applied (campaigns do not stack: at most one)."""
    if not campaign:
        return rule
    return _("%(rule)s, with campaign %(campaign)s") % {"rule": rule, "campaign": campaign}


def refund_text(*, external_id: str) -> str:
    return _("Refund of transaction %(id)s") % {"id": external_id}


def expiry_text(*, expires_on: dt.date | str | None) -> str:
    return _("Points expired on %(date)s") % {"date": expires_on}


def forfeit_text() -> str:
    return _("Points forfeited: membership closed")


def redemption_text(*, kind: str, names: Mapping[str, str]) -> str:
    """A redemption's debit or its refund, naming the reward (``names``: its name per
    language, ``en`` and ``zh_hans``) in the active language."""
    name = translated_text(en=names.get("en", ""), zh_hans=names.get("zh_hans", ""))
    if kind == Entry.Kind.REFUND:
        return _("Refunded: %(reward)s") % {"reward": name}
    return _("Redeemed: %(reward)s") % {"reward": name}


def entry_description(entry: Entry, *, campaigns: Mapping[str, Campaign]) -> str:
    """``entry``'s description in the active language: its earning rule (load it with the
    entry) and the campaign its record names, looked up in ``campaigns`` by code."""
    recorded: dict[str, Any] = entry.rules or {}
    rule = entry.earning_rule if entry.earning_rule_id else None
    if entry.kind == Entry.Kind.EARN and rule is not None:
        applied = recorded.get("campaign") or {}
        campaign = campaigns.get(applied.get("code", ""))
        return earning_text(
            rule=rule.name,
            campaign=campaign.name if campaign else applied.get("code"),
        )
    if entry.kind == Entry.Kind.REVERSE and recorded.get("reverses"):
        return refund_text(external_id=recorded["reverses"])
    if entry.kind == Entry.Kind.EXPIRE and recorded.get("expires_on"):
        return expiry_text(expires_on=recorded["expires_on"])
    if entry.kind == Entry.Kind.FORFEIT:
        return forfeit_text()
    if entry.kind in (Entry.Kind.REDEEM, Entry.Kind.REFUND) and recorded.get("reward"):
        return redemption_text(kind=entry.kind, names=recorded["reward"])
    return entry.description
