"""The catalogue as staff keep it: each save validated and audited, stock changes on their own.

:func:`reward_create` and :func:`reward_update` validate (``full_clean``), save and record the
audit row in one transaction; a change of ``stock`` is recorded as ``reward.stock_change`` with
its before and after, apart from the other fields, so the stock's history reads on its own.
Rewards are never deleted (redemptions name them): they are deactivated.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from loyalty.models import AuditAction
from loyalty.services import audit_log_record, audited_changes, audited_values
from rewards.models import Reward


@transaction.atomic
def reward_create(*, actor: Any, fields: dict[str, Any]) -> Reward:
    """A new reward from ``fields``. Raises :class:`~django.core.exceptions.ValidationError`
    for invalid values; nothing is written then."""
    reward = Reward(**fields)
    reward.full_clean()
    reward.save(force_insert=True)
    audit_log_record(
        actor=actor, action=AuditAction.REWARD_CREATE, target=reward, after=audited_values(reward)
    )
    return reward


@transaction.atomic
def reward_update(
    *, reward: Reward, actor: Any, changes: dict[str, Any], reason: str = ""
) -> Reward:
    """Apply ``changes`` (only the fields staff changed) to the stored reward, locked meanwhile,
    so fields staff did not change are never written back stale. ``stock`` is the value staff
    set (the admin refuses one from a form that redemptions have overtaken). Raises
    ``ValidationError`` for invalid values or a changed ``code`` (nothing written)."""
    if "code" in changes and changes["code"] != reward.code:
        raise ValidationError({"code": _("A reward's code never changes.")})
    stored = Reward.objects.select_for_update().get(pk=reward.pk)
    values = audited_values(stored)
    for name, value in changes.items():
        setattr(stored, name, value)
    stored.full_clean()
    before, after = audited_changes(values, audited_values(stored))
    if not after:
        return stored
    stored.save(update_fields=[*after, "updated_at"])
    if "stock" in after:
        audit_log_record(
            actor=actor,
            action=AuditAction.REWARD_STOCK_CHANGE,
            target=stored,
            before={"stock": before.pop("stock")},
            after={"stock": after.pop("stock")},
            reason=reason,
        )
    if after:
        audit_log_record(
            actor=actor,
            action=AuditAction.REWARD_UPDATE,
            target=stored,
            before=before,
            after=after,
            reason=reason,
        )
    return stored
