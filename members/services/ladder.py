"""The tier ladder as staff configure it: a tier and its benefits saved together, audited.

:func:`tier_save` validates the tier and each benefit (``full_clean``), saves them and records
one audit row (``tier.create`` or ``tier.update``), all in one transaction: the ladder and the
record of its change commit or roll back together. An update's row holds the changed fields only,
before and after, and the whole list of benefits when any of them changed; a save that changes
nothing records nothing. A tier's code never changes once it exists (members, history,
overrides and campaigns' target tiers name it), and tiers are never deleted: they are
deactivated.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from loyalty.models import AuditAction
from loyalty.services import audit_log_record
from members.models import Tier, TierBenefit

BENEFIT_FIELDS = ("kind", "text_en", "text_zh_hans", "position")


def _tier_values(tier: Tier) -> dict[str, Any]:
    """The fields staff edit, as the audit row records them."""
    return {
        field.name: field.value_from_object(tier)
        for field in Tier._meta.concrete_fields
        if field.editable and not field.primary_key
    }


def _benefit_values(tier: Tier) -> list[dict[str, Any]]:
    return list(
        TierBenefit.objects.filter(tier=tier).order_by("position", "kind").values(*BENEFIT_FIELDS)
    )


def _benefits_save(
    *, tier: Tier, benefits: Iterable[TierBenefit], removed_benefits: Iterable[TierBenefit]
) -> None:
    removed = [benefit.pk for benefit in removed_benefits if benefit.pk is not None]
    if removed:
        TierBenefit.objects.filter(tier=tier, pk__in=removed).delete()
    for benefit in benefits:
        if benefit.tier_id is None:
            benefit.tier = tier
        elif benefit.tier_id != tier.pk:
            raise ValueError(f"benefit {benefit.pk} belongs to another tier")
        benefit.full_clean()
        benefit.save()


@transaction.atomic
def tier_save(
    *,
    tier: Tier,
    actor: Any,
    benefits: Iterable[TierBenefit] = (),
    removed_benefits: Iterable[TierBenefit] = (),
) -> Tier:
    """Create ``tier`` (no primary key yet) or save its changed fields, with ``benefits`` (new or
    changed ones) saved as this tier's and ``removed_benefits`` deleted.

    Raises :class:`~django.core.exceptions.ValidationError` for invalid values (and
    ``ValueError`` for a new ``code`` on an existing tier, or another tier's benefit); nothing
    is written then.
    """
    if tier.pk is None:
        tier.full_clean()
        tier.save()
        _benefits_save(tier=tier, benefits=benefits, removed_benefits=removed_benefits)
        audit_log_record(
            actor=actor,
            action=AuditAction.TIER_CREATE,
            target=tier,
            after={**_tier_values(tier), "benefits": _benefit_values(tier)},
        )
        return tier
    stored = Tier.objects.select_for_update().get(pk=tier.pk)
    if tier.code != stored.code:  # the admin shows it read-only; no form can change it
        raise ValueError(f"tier {stored.code}: the code never changes once the tier exists")
    tier.full_clean()
    before, after = _tier_values(stored), _tier_values(tier)
    changed = [name for name, value in after.items() if before[name] != value]
    if changed:
        tier.save(update_fields=[*changed, "updated_at"])
    benefits_before = _benefit_values(tier)
    _benefits_save(tier=tier, benefits=benefits, removed_benefits=removed_benefits)
    benefits_after = _benefit_values(tier)
    old = {name: before[name] for name in changed}
    new = {name: after[name] for name in changed}
    if benefits_after != benefits_before:
        old["benefits"], new["benefits"] = benefits_before, benefits_after
    if new:
        audit_log_record(
            actor=actor, action=AuditAction.TIER_UPDATE, target=tier, before=old, after=new
        )
    return tier
