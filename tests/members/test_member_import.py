"""Importing members and asset snapshots from a file in the console: a preview first, with an
error on each refused row and nothing written; a clean file imports through the services
(audited, one row per member and date); a file is all or nothing, even when a row turns
invalid between the preview and the confirmation."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from loyalty import roles
from loyalty.models import AuditAction, AuditLog
from loyalty.timeutils import business_today
from members.models import AssetSnapshot, Member
from members.services.members import member_close
from tests.factories import AssetSnapshotFactory, MemberFactory, UserFactory, database_state

pytestmark = pytest.mark.django_db

MEMBERS = "/admin/members/member/"
SNAPSHOTS = "/admin/members/assetsnapshot/"


@pytest.fixture
def admin_user(client):
    user = UserFactory(username="programme", roles=[roles.PROGRAMME_ADMIN])
    client.force_login(user)
    return user


def preview(client, base: str, text: str):
    upload = SimpleUploadedFile("file.csv", text.encode(), content_type="text/csv")
    return client.post(f"{base}import/", {"import_file": upload, "format": "0", "resource": "0"})


def confirm(client, base: str, preview_response):
    html = preview_response.content.decode()
    fields = dict(
        re.findall(
            r'name="(import_file_name|original_file_name|format|resource)"'
            r'[^>]*value="([^"]*)"',
            html,
        )
    )
    assert "import_file_name" in fields, "no confirmation offered"
    return client.post(f"{base}process_import/", fields)


GOOD_MEMBERS = (
    "customer_no,name,phone,email,city,preferred_language,marketing_consent\n"
    "NEW0001,Chen Jing,13800001111,chen@example.com,Suzhou,en,1\n"
    "OLD0001,Old Name Kept,,old@example.com,Wuxi,zh-hans,0\n"
)


def test_a_bad_row_is_shown_with_its_error_and_nothing_is_written(client, admin_user):
    MemberFactory(customer_no="OLD0001", city="Shanghai")
    before = database_state()
    response = preview(
        client,
        MEMBERS,
        "customer_no,name,phone,city\n"
        "NEW0001,Chen Jing,13800001111,Suzhou\n"
        "NEW0002,Bad Phone,call me,Suzhou\n"
        "bad no!,Bad Number,13800002222,Suzhou\n"
        "NEW0003,,13800003333,Suzhou\n",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter a valid phone number." in html
    assert "A customer number is 1 to 32 letters" in html
    assert "This field cannot be blank." in html
    assert "process_import" not in html  # no confirmation while any row is refused
    assert database_state() == before


def test_a_good_file_imports_through_the_service_with_audit(client, admin_user):
    old = MemberFactory(customer_no="OLD0001", city="Shanghai", phone="13900000000")
    response = preview(client, MEMBERS, GOOD_MEMBERS)
    assert response.status_code == 200
    assert not Member.objects.filter(customer_no="NEW0001").exists()  # a preview writes nothing
    done = confirm(client, MEMBERS, response)
    assert done.status_code == 302
    new = Member.objects.get(customer_no="NEW0001")
    assert (new.name, new.city, new.marketing_consent, new.preferred_language) == (
        "Chen Jing",
        "Suzhou",
        True,
        "en",
    )
    old.refresh_from_db()
    assert (old.name, old.city, old.phone) == ("Old Name Kept", "Wuxi", "")
    actions = set(AuditLog.objects.filter(actor=admin_user).values_list("action", "target_id"))
    assert {(AuditAction.MEMBER_CREATE, "NEW0001"), (AuditAction.MEMBER_UPDATE, "OLD0001")} <= (
        actions
    )


def test_a_row_refused_at_confirmation_leaves_the_whole_file_unwritten(client, admin_user):
    old = MemberFactory(customer_no="OLD0001")
    response = preview(client, MEMBERS, GOOD_MEMBERS)
    member_close(member=old, actor=None, reason="closed meanwhile")  # after the preview
    before = database_state()
    refused = confirm(client, MEMBERS, response)
    assert database_state() == before
    assert refused.status_code == 302
    shown = client.get(refused["Location"]).content.decode()
    assert "Nothing was imported" in shown
    assert "Row 2" in shown
    assert not Member.objects.filter(customer_no="NEW0001").exists()


def test_a_closed_member_in_a_file_is_refused_on_its_row(client, admin_user):
    member_close(member=MemberFactory(customer_no="OLD0001"), actor=None)
    html = preview(client, MEMBERS, GOOD_MEMBERS).content.decode()
    assert "closed" in html.lower()
    assert "process_import" not in html


def test_only_staff_who_may_add_change_and_see_members_import_them(client):
    client.force_login(UserFactory(username="ops", roles=[roles.OPERATIONS]))
    assert client.get(f"{MEMBERS}import/").status_code == 403
    assert client.get(f"{SNAPSHOTS}import/").status_code == 403


SNAPSHOT_HEADER = "customer_no,as_of,deposits,wealth,funds,insurance,loans,contribution\n"


def test_bad_snapshot_rows_are_each_explained_and_nothing_is_written(client, admin_user):
    MemberFactory(customer_no="SNAP001")
    tomorrow = business_today() + dt.timedelta(days=2)
    before = database_state()
    html = preview(
        client,
        SNAPSHOTS,
        SNAPSHOT_HEADER
        + "SNAP001,2026-09-30,1000.00,0,0,0,0,10\n"
        + "NOBODY1,2026-09-30,1000.00,0,0,0,0,10\n"
        + f"SNAP001,{tomorrow.isoformat()},1000.00,0,0,0,0,10\n"
        + "SNAP001,2026-08-31,-5,0,0,0,0,10\n"
        + "SNAP001,2026-09-30,2000.00,0,0,0,0,10\n"
        + "SNAP001,not a date,1,0,0,0,0,0\n",
    ).content.decode()
    assert "Unknown customer number." in html
    assert "This date is in the future." in html
    assert "greater than or equal to 0" in html
    assert "Row 1 already holds this member and date." in html
    assert "Date has wrong format" in html
    assert "process_import" not in html
    assert database_state() == before


def test_a_good_snapshot_file_creates_and_replaces_through_the_service(client, admin_user):
    member = MemberFactory(customer_no="SNAP001")
    AssetSnapshotFactory(member=member, as_of=dt.date(2026, 8, 31), deposits=Decimal("1.00"))
    response = preview(
        client,
        SNAPSHOTS,
        SNAPSHOT_HEADER
        + "SNAP001,2026-08-31,5000.00,100,0,0,0,10\n"
        + "SNAP001,2026-09-30,6000.00,0,200,0,50,20\n",
    )
    assert AssetSnapshot.objects.filter(member=member).count() == 1
    assert confirm(client, SNAPSHOTS, response).status_code == 302
    rows = {
        row.as_of: (row.deposits, row.aum, row.loans, row.contribution)
        for row in AssetSnapshot.objects.filter(member=member)
    }
    assert rows == {
        dt.date(2026, 8, 31): (Decimal("5000.00"), Decimal("5100.00"), 0, Decimal("10.00")),
        dt.date(2026, 9, 30): (Decimal("6000.00"), Decimal("6200.00"), 50, Decimal("20.00")),
    }


def test_snapshot_export_names_members_by_customer_number(client, admin_user):
    member = MemberFactory(customer_no="SNAP001")
    AssetSnapshotFactory(member=member, as_of=dt.date(2026, 8, 31))
    response = client.post(
        f"{SNAPSHOTS}export/",
        {"format": "0", "resource": "0"},
    )
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0] == SNAPSHOT_HEADER.strip()
    assert lines[1] == "SNAP001,2026-08-31,50000.00,0.00,0.00,0.00,0.00,1000.00"
