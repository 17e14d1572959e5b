"""Earning rules and campaigns as staff configure them: each save validated and audited.

:func:`earning_rule_save` and :func:`campaign_save` validate the object (``full_clean``), save it
(a campaign with the rules it applies to) and record one audit row (``earning_rule.create`` or
``.update``, ``campaign.create`` or ``.update``) in one transaction, so the configuration and the
record of its change commit or roll back together. An update's row holds the changed fields only,
before and after; a save that changes nothing records nothing. Earning rules are never deleted
(ledger entries name the rule that credited them): they are deactivated. The calculation that
reads them is :mod:`points.services.earning`.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from loyalty.models import AuditAction
from loyalty.services import audit_log_record, audited_changes, audited_values
from points.models import Campaign, EarningRule


@transaction.atomic
def earning_rule_save(*, rule: EarningRule, actor: Any) -> EarningRule:
    """Create ``rule`` (no primary key yet) or save its changed fields.

    Raises :class:`~django.core.exceptions.ValidationError` for invalid values; nothing is
    written then.
    """
    rule.full_clean()
    if rule.pk is None:
        rule.save()
        audit_log_record(
            actor=actor,
            action=AuditAction.EARNING_RULE_CREATE,
            target=rule,
            after=audited_values(rule),
        )
        return rule
    stored = EarningRule.objects.select_for_update().get(pk=rule.pk)
    before, after = audited_changes(audited_values(stored), audited_values(rule))
    if after:
        rule.save(update_fields=[*after, "updated_at"])
        audit_log_record(
            actor=actor,
            action=AuditAction.EARNING_RULE_UPDATE,
            target=rule,
            before=before,
            after=after,
        )
    return rule


def _rule_codes(rules: Iterable[EarningRule]) -> list[str]:
    return sorted(rule.code for rule in rules)


@transaction.atomic
def campaign_save(
    *, campaign: Campaign, actor: Any, rules: Iterable[EarningRule] | None = None
) -> Campaign:
    """Create ``campaign`` (no primary key yet) or save its changed fields; ``rules`` (empty:
    every rule) replace the rules it applies to, ``None`` keeps them.

    Raises :class:`~django.core.exceptions.ValidationError` for invalid values; nothing is
    written then.
    """
    campaign.full_clean()
    rules = None if rules is None else list(rules)
    if campaign.pk is None:
        campaign.save()
        campaign.rules.set(rules or [])
        audit_log_record(
            actor=actor,
            action=AuditAction.CAMPAIGN_CREATE,
            target=campaign,
            after={**audited_values(campaign), "rules": _rule_codes(rules or [])},
        )
        return campaign
    stored = Campaign.objects.select_for_update().get(pk=campaign.pk)
    stored_rules = list(stored.rules.all())
    before, after = audited_changes(
        {**audited_values(stored), "rules": _rule_codes(stored_rules)},
        {
            **audited_values(campaign),
            "rules": _rule_codes(stored_rules if rules is None else rules),
        },
    )
    fields = [name for name in after if name != "rules"]
    if fields:
        campaign.save(update_fields=fields)
    if "rules" in after:
        campaign.rules.set(rules or [])
    if after:
        audit_log_record(
            actor=actor,
            action=AuditAction.CAMPAIGN_UPDATE,
            target=campaign,
            before=before,
            after=after,
        )
    return campaign
