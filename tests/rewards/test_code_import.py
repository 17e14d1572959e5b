"""Coupon codes imported in the console: previewed row by row, added through the codes service
(its audit row, per reward), and refused per row for a duplicate (in the pool or repeated in
the file), an unknown reward, a reward without a pool or a malformed code, adding nothing then."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from loyalty import roles
from loyalty.models import AuditLog
from rewards.services.codes import codes_add
from tests.factories import UserFactory, database_state
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

IMPORT = "/admin/rewards/couponcode/import/"
PROCESS = "/admin/rewards/couponcode/process_import/"
IGNORE = ("django_session", "django_admin_log", "axes_accesslog", "axes_accessattempt")


def _client(*role_names: str) -> Client:
    client = Client()
    client.user = UserFactory(roles=list(role_names))  # type: ignore[attr-defined]
    client.force_login(client.user)  # type: ignore[attr-defined]
    return client


def _preview(client: Client, text: str):
    page = client.get(IMPORT)
    assert page.status_code == 200
    csv_format = next(
        value
        for value, label in page.context["form"].fields["format"].choices
        if str(label).lower() == "csv"
    )
    upload = SimpleUploadedFile("codes.csv", text.encode(), content_type="text/csv")
    return client.post(IMPORT, {"format": csv_format, "import_file": upload})


def test_a_good_file_adds_the_codes_through_the_service(django_capture_on_commit_callbacks):
    coffee = RewardFactory(code="coffee", category="coupon")
    cinema = RewardFactory(code="cinema", category="voucher")
    client = _client(roles.MARKETING)
    before = database_state(ignore=IGNORE)
    preview = _preview(
        client,
        "reward,code,expires_on\ncoffee,CAFE-0001,2030-01-31\ncoffee,CAFE-0002,\n"
        "cinema,FILM-0001,\n",
    )
    result = preview.context["result"]
    assert not result.has_validation_errors(), result.invalid_rows
    assert [row.import_type for row in result.rows] == ["new", "new", "new"]
    assert database_state(ignore=IGNORE) == before  # the preview adds nothing
    response = client.post(PROCESS, dict(preview.context["confirm_form"].initial), follow=True)
    assert response.status_code == 200
    assert set(coffee.codes.values_list("code", flat=True)) == {"CAFE-0001", "CAFE-0002"}
    assert str(coffee.codes.get(code="CAFE-0001").expires_on) == "2030-01-31"
    assert list(cinema.codes.values_list("code", flat=True)) == ["FILM-0001"]
    audits = AuditLog.objects.filter(action="reward.codes_add").order_by("target_id")
    assert {(row.target_id, row.after["added"], row.after["via"]) for row in audits} == {
        (str(coffee.pk), 2, "import"),
        (str(cinema.pk), 1, "import"),
    }
    assert {row.actor_id for row in audits} == {client.user.pk}


def test_duplicates_and_bad_rows_are_refused_per_row_and_nothing_is_added():
    coffee = RewardFactory(code="coffee", category="coupon")
    RewardFactory(code="mug", category="gift")
    codes_add(reward=coffee, codes=[("CAFE-0001", None)], actor=None)
    client = _client(roles.MARKETING)
    before = database_state(ignore=IGNORE)
    preview = _preview(
        client,
        "reward,code,expires_on\n"
        "coffee,CAFE-0009,\n"  # 2: good
        "coffee,CAFE-0001,\n"  # 3: in the pool already
        "coffee,CAFE-0009,\n"  # 4: repeated in the file
        "nothing,CAFE-0010,\n"  # 5: no such reward
        "mug,MUG-0001,\n"  # 6: a gift has no pool
        "coffee,ab,\n"  # 7: too short
        "coffee,CAFE-0011,31/12/2030\n",  # 8: not a date
    )
    result = preview.context["result"]
    errors = {row.number: row.error_dict for row in result.invalid_rows}
    assert errors == {
        2: {"code": ["This code is in the reward's pool already."]},
        3: {"code": ["This code is repeated in the file."]},
        4: {"reward": ["No reward with this code."]},
        5: {"reward": ["Only coupon and voucher rewards have a code pool."]},
        6: {"code": ["A code has 4 to 64 printable characters and no spaces."]},
        7: {"expires_on": ["Not a date (YYYY-MM-DD)."]},
    }
    assert "confirm_form" not in preview.context
    assert "This code is in the reward&#x27;s pool already." in preview.content.decode()
    assert database_state(ignore=IGNORE) == before
    assert list(coffee.codes.values_list("code", flat=True)) == ["CAFE-0001"]


def test_importing_codes_needs_the_permission_to_add_them():
    viewer = _client(roles.OPERATIONS)
    assert viewer.get(IMPORT).status_code == 403
    assert viewer.post(PROCESS, {}).status_code == 403
