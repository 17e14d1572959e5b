"""Django's model permissions, read in one query.

:class:`ModelBackend` reads a user's own permissions and the permissions of the user's groups
with two ORM queries per request; the ingest API checks permissions on every call, so this
backend reads the same set with one plain SQL statement. Everything else (superusers, inactive
users, object permissions, authentication) is Django's.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


def _permissions_sql() -> str:
    user_model = get_user_model()
    quote = connection.ops.quote_name
    # Many-to-many fields always have a ``through`` model and a model always has a
    # ``model_name``; the stubs type both as optional.
    user_perms = user_model._meta.get_field("user_permissions").remote_field.through._meta  # type: ignore[union-attr]
    user_groups = user_model._meta.get_field("groups").remote_field.through._meta  # type: ignore[union-attr]
    group_perms = Group._meta.get_field("permissions").remote_field.through._meta  # type: ignore[union-attr]
    user_column = user_model._meta.model_name + "_id"  # type: ignore[operator]
    return (
        f"SELECT ct.{quote('app_label')}, p.{quote('codename')} "  # noqa: S608 - model names
        f"FROM {quote(Permission._meta.db_table)} AS p "
        f"JOIN {quote(ContentType._meta.db_table)} AS ct ON ct.id = p.content_type_id "
        "WHERE p.id IN ("
        f"SELECT permission_id FROM {quote(user_perms.db_table)} WHERE {user_column} = %s "
        f"UNION SELECT gp.permission_id FROM {quote(group_perms.db_table)} AS gp "
        f"JOIN {quote(user_groups.db_table)} AS ug ON ug.group_id = gp.group_id "
        f"WHERE ug.{user_column} = %s)"
    )


class ModelPermissionsBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app}.{codename}" for app, codename in cursor.fetchall()}
        return user_obj._perm_cache
