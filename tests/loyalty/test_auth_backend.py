import pytest
from django.contrib.auth.models import Group, Permission, User

from loyalty.auth_backends import ModelPermissionsBackend

pytestmark = pytest.mark.django_db


def _perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def test_permissions_are_the_users_own_and_their_groups_as_with_django():
    from django.contrib.auth.backends import ModelBackend

    group, other_group = Group.objects.create(name="g1"), Group.objects.create(name="g2")
    group.permissions.add(_perm("add_transaction"), _perm("view_entry"))
    other_group.permissions.add(_perm("change_adjustment"))
    user = User.objects.create_user("u1")
    user.groups.add(group)
    user.user_permissions.add(_perm("view_account"))
    User.objects.create_user("u2").groups.add(other_group)

    mine = ModelPermissionsBackend().get_all_permissions(User.objects.get(pk=user.pk))
    assert mine == ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    assert mine == {"points.add_transaction", "points.view_entry", "points.view_account"}
    fresh = User.objects.get(pk=user.pk)
    assert fresh.has_perms(["points.add_transaction", "points.view_account"])
    assert not fresh.has_perm("points.change_adjustment")


def test_inactive_users_have_no_permissions_and_superusers_have_all():
    group = Group.objects.create(name="g")
    group.permissions.add(_perm("add_transaction"))
    inactive = User.objects.create_user("off", is_active=False)
    inactive.groups.add(group)
    assert not User.objects.get(pk=inactive.pk).has_perm("points.add_transaction")
    boss = User.objects.create_superuser("boss")
    assert User.objects.get(pk=boss.pk).has_perm("points.change_adjustment")
    backend = ModelPermissionsBackend()
    assert backend.get_all_permissions(User.objects.get(pk=boss.pk)) >= {"points.add_transaction"}
