from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models.fields.files import FieldFile
from django.forms.models import model_to_dict
from django.utils import translation

from loyalty.models import AuditAction, AuditLog, ProgrammeSettings, StaffNotice
from loyalty.selectors import programme_settings_get


def actor_label_for(actor: Any) -> str:
    if actor is None:
        return "system"
    label = getattr(actor, "audit_label", None)
    if label:
        return str(label)
    return str(getattr(actor, "get_username", lambda: "unknown")())


def audited_values(obj: models.Model) -> dict[str, Any]:
    """The fields staff edit on ``obj``, as an audit row records them."""
    values = {}
    for field in obj._meta.concrete_fields:
        if field.editable and not field.primary_key:
            value = field.value_from_object(obj)
            values[field.name] = value.name if isinstance(value, FieldFile) else value
    return values


def audited_changes(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``before`` and ``after`` narrowed to the names whose values differ."""
    changed = [name for name, value in after.items() if before.get(name) != value]
    return {name: before.get(name) for name in changed}, {name: after[name] for name in changed}


def audit_log_record(
    *,
    actor: Any,
    action: AuditAction,
    target: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditLog:
    """Append one audit row. Call it inside the transaction of the change it describes,
    so the change and its record commit or roll back together."""
    user = actor if isinstance(actor, AbstractBaseUser) else None
    target_id = getattr(target, "audit_id", None) or getattr(target, "pk", None) or str(target)
    # The plugin types ``actor`` as the concrete User; any AUTH_USER_MODEL instance is right.
    return AuditLog.objects.create(  # type: ignore[misc]
        actor=user,
        actor_label=actor_label_for(actor),
        action=action,
        target_type=target._meta.label_lower if hasattr(target, "_meta") else type(target).__name__,
        target_id=str(target_id),
        before=before,
        after=after,
        reason=reason,
    )


def staff_notice_send(
    *, kind: str, role: str, title: Any, body: Any, dedupe_key: str, data: dict | None = None
) -> StaffNotice | None:
    """Tell staff of ``role`` something they must act on, once per ``dedupe_key`` (``None`` when
    it was already said). Title and body are rendered in the programme's default language with
    ``data`` filled in when given as lazy translations."""
    data = data or {}
    with translation.override(settings.LANGUAGE_CODE):
        rendered_title, rendered_body = (str(title) % data)[:200], str(body) % data
    notice, created = StaffNotice.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "kind": kind,
            "role": role,
            "title": rendered_title,
            "body": rendered_body,
            "data": data,
        },
    )
    return notice if created else None


@transaction.atomic
def programme_settings_update(*, actor: Any, reason: str = "", **changes: Any) -> ProgrammeSettings:
    """Change programme settings and audit the before and after values."""
    current = ProgrammeSettings.objects.select_for_update().get(pk=programme_settings_get().pk)
    before = model_to_dict(current)
    for field, value in changes.items():
        setattr(current, field, value)
    current.full_clean()
    current.save()
    audit_log_record(
        actor=actor,
        action=AuditAction.PROGRAMME_SETTINGS_UPDATE,
        target=current,
        before=before,
        after=model_to_dict(current),
        reason=reason,
    )
    return current
