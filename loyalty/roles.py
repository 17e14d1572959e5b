"""Staff roles (Django groups) and what each may do.

The groups are created by the data migration ``loyalty.0002_roles``; their permissions are synced
after every ``migrate`` (permissions themselves only exist once all apps have migrated), so a new
app's permissions join the roles as soon as it is installed. A pattern is ``app_label.codename``
where the codename may use shell wildcards (``rewards.*``, ``insights.view_*``).
"""

from fnmatch import fnmatchcase

from django.utils.translation import gettext_lazy as _

PROGRAMME_ADMIN = "programme_admin"
MARKETING = "marketing"
OPERATIONS = "operations"
APPROVER = "approver"
INTEGRATION = "integration"

# What staff read for a role (the group's name is its code).
ROLE_LABELS = {
    PROGRAMME_ADMIN: _("Programme administrator"),
    MARKETING: _("Marketing"),
    OPERATIONS: _("Operations"),
    APPROVER: _("Approver"),
    INTEGRATION: _("Integration (core banking)"),
}

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    PROGRAMME_ADMIN: (
        "loyalty.*",
        "members.*",
        "points.*",
        "rewards.*",
        "events.*",
        "insights.*",
        "django_celery_beat.*",
        "auth.view_user",
    ),
    MARKETING: (
        # The catalogue, code pools and fulfilment; a co-payment is recorded by the integration
        # account only (the bank collected it).
        "rewards.*_reward",
        "rewards.*_couponcode",
        "rewards.view_*",
        "rewards.fulfil_redemption",
        "rewards.cancel_redemption",
        "events.*",
        "members.view_tier",
        "members.*segment*",
        "insights.view_*",
        "insights.*_survey",
        "points.view_earningrule",
        "points.*campaign*",
        "loyalty.view_staffnotice",
    ),
    OPERATIONS: (
        "members.view_*",
        "points.view_*",
        "points.add_adjustment",
        "members.add_tieroverride",
        "rewards.view_*",
        "rewards.fulfil_redemption",
        "rewards.cancel_redemption",
        "events.view_*",
    ),
    APPROVER: (
        "members.view_tieroverride",
        "members.approve_tieroverride",
        "points.view_adjustment",
        "points.approve_adjustment",
        "points.view_account",
        "points.view_entry",
    ),
    INTEGRATION: (
        "members.add_member",
        "members.change_member",
        "members.add_assetsnapshot",
        "members.issue_member_token",
        "points.add_transaction",
        "rewards.view_redemption",
        "rewards.record_cash_payment",
    ),
}


def role_permission_ids(permissions, patterns: tuple[str, ...]) -> list[int]:
    """Ids of the permissions (rows of ``auth.Permission``) that match any of ``patterns``."""
    wanted = [pattern.split(".", 1) for pattern in patterns]
    return [
        perm.pk
        for perm in permissions
        if any(
            perm.content_type.app_label == app and fnmatchcase(perm.codename, codename)
            for app, codename in wanted
        )
    ]


def roles_sync(*, group_model, permission_model) -> None:
    """Create the role groups if missing and give each exactly the permissions of its patterns."""
    permissions = list(permission_model.objects.select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(role_permission_ids(permissions, patterns))


def roles_sync_after_migrate(sender, apps=None, using="default", **kwargs) -> None:
    """Runs once per ``migrate`` or ``flush`` (a flush empties the auth tables and sends
    post_migrate without ``apps``), after the last app's permissions exist."""
    from django.apps import apps as installed

    # post_migrate is sent only for apps that have a models module.
    last = [config for config in installed.get_app_configs() if config.models_module][-1]
    if sender.label != last.label:
        return
    apps = apps or installed
    try:
        group_model = apps.get_model("auth", "Group")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:
        return
    roles_sync(group_model=group_model, permission_model=permission_model)
