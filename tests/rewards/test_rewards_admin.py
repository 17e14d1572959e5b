"""The rewards admin on PostgreSQL, through the Django test client: the catalogue saved through
``rewards.services.catalogue`` (audited; a stock change on its own row; a redemption's stock
decrement never overwritten), code pools filled by CSV or pattern through
``rewards.services.codes``, redemptions fulfilled and cancelled by actions through
``rewards.services.redemptions``, each refusal reported by its message with nothing changed."""

import io
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from loyalty import roles
from loyalty.models import AuditLog
from points.models import Account
from points.services.reconciliation import points_reconcile
from rewards.models import BudgetMonth, CouponCode, Redemption, Reward
from rewards.services.catalogue import reward_update
from rewards.services.codes import codes_add
from rewards.services.redemptions import redemption_create, redemption_fulfil
from tests.factories import MemberFactory, UserFactory, database_state
from tests.rewards.conftest import fund
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

REWARDS = "/admin/rewards/reward/"
REDEMPTIONS = "/admin/rewards/redemption/"


@pytest.fixture
def superuser_client(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw-1234567")
    client.force_login(user)
    client.user = user
    return client


def _client_for(client, *role_names):
    user = UserFactory(roles=list(role_names))
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def marketing_client(client):
    return _client_for(client, roles.MARKETING)


@pytest.fixture
def operations_client(client):
    return _client_for(client, roles.OPERATIONS)


def _form(reward: Reward, **changes) -> dict:
    """The change form of ``reward`` as the browser posts it back: every field as shown, the
    stock the form showed in ``initial-stock``, then ``changes``."""
    stock = "" if reward.stock is None else str(reward.stock)
    data = {
        "category": reward.category,
        "name_en": reward.name_en,
        "name_zh_hans": reward.name_zh_hans,
        "description_en": reward.description_en,
        "description_zh_hans": reward.description_zh_hans,
        "position": str(reward.position),
        "points_price": str(reward.points_price),
        "cash_price": str(reward.cash_price),
        "currency": reward.currency,
        "stock": stock,
        "initial-stock": stock,
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_to_0": "",
        "valid_to_1": "",
        "eligible_tiers": list(reward.eligible_tiers),
        "limit_per_member": "" if reward.limit_per_member is None else reward.limit_per_member,
        "limit_period": reward.limit_period,
        "monthly_points_budget": "",
        "low_codes_threshold": str(reward.low_codes_threshold),
        "change_reason": "",
        "_save": "Save",
    }
    if reward.active:
        data["active"] = "on"
    data.update(changes)
    return data


def _audit(reward: Reward, action: str):
    return AuditLog.objects.filter(target_id=str(reward.pk), action=action)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return SimpleUploadedFile("cooker.png", buffer.getvalue(), content_type="image/png")


def test_a_reward_added_in_the_admin_is_created_by_the_service_with_its_image(
    superuser_client, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    page = superuser_client.get(f"{REWARDS}add/")
    assert page.status_code == 200
    assert b'name="image"' in page.content
    assert b"multipart/form-data" in page.content
    template = RewardFactory.build(code="rice-cooker", stock=20)
    response = superuser_client.post(
        f"{REWARDS}add/", _form(template, code="rice-cooker", image=_png())
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    reward = Reward.objects.get(code="rice-cooker")
    assert reward.stock == 20
    assert reward.image.name.startswith("rewards/")
    assert (tmp_path / reward.image.name).exists()
    created = _audit(reward, "reward.create").get()
    assert created.actor == superuser_client.user
    assert created.after["name_zh_hans"] == template.name_zh_hans


def test_an_edit_saves_only_the_changed_fields_and_keeps_a_concurrent_stock_decrement(
    marketing_client,
):
    reward = RewardFactory(points_price=100, stock=10)
    page = marketing_client.get(f"{REWARDS}{reward.pk}/change/")
    assert page.status_code == 200
    assert b'name="initial-stock"' in page.content
    shown = Reward.objects.get(pk=reward.pk)
    # While the form is open, a member redeems two: the stock goes from 10 to 8.
    member = MemberFactory()
    fund(member, 1000)
    redemption_create(member=member, reward_id=reward.pk, quantity=2)
    response = marketing_client.post(
        f"{REWARDS}{reward.pk}/change/", _form(shown, name_en="Rice cooker, 4 L")
    )
    assert response.status_code == 302
    reward.refresh_from_db()
    assert reward.name_en == "Rice cooker, 4 L"
    assert reward.stock == 8  # the form's 10 was not written back
    update = _audit(reward, "reward.update").get()
    assert update.actor == marketing_client.user
    assert update.before == {"name_en": shown.name_en}
    assert update.after == {"name_en": "Rice cooker, 4 L"}
    assert not _audit(reward, "reward.stock_change").exists()


def test_a_stock_change_needs_a_reason_and_is_audited_on_its_own(marketing_client):
    reward = RewardFactory(stock=10)
    url = f"{REWARDS}{reward.pk}/change/"
    before = database_state()
    refused = marketing_client.post(url, _form(reward, stock="50"))
    assert refused.status_code == 200
    assert "Say why the stock changes." in str(refused.context["adminform"].form.errors)
    assert database_state() == before
    response = marketing_client.post(
        url, _form(reward, stock="50", position="3", change_reason="Delivery of 40 received")
    )
    assert response.status_code == 302
    reward.refresh_from_db()
    assert (reward.stock, reward.position) == (50, 3)
    stock = _audit(reward, "reward.stock_change").get()
    assert (stock.before, stock.after) == ({"stock": 10}, {"stock": 50})
    assert stock.reason == "Delivery of 40 received"
    other = _audit(reward, "reward.update").get()
    assert (other.before, other.after) == ({"position": 0}, {"position": 3})


def test_a_stock_edit_over_a_stock_redemptions_moved_is_refused_then_shown_anew(
    marketing_client,
):
    reward = RewardFactory(points_price=100, stock=10)
    url = f"{REWARDS}{reward.pk}/change/"
    shown = Reward.objects.get(pk=reward.pk)
    member = MemberFactory()
    fund(member, 1000)
    redemption_create(member=member, reward_id=reward.pk)  # 10 -> 9 meanwhile
    before = database_state()
    refused = marketing_client.post(url, _form(shown, stock="50", change_reason="Recount"))
    assert refused.status_code == 200
    errors = str(refused.context["adminform"].form.errors["stock"])
    assert "from 10 to 9" in errors
    assert database_state() == before
    # The form shown again carries the current stock: saved again, it goes through.
    assert b'name="initial-stock" value="9"' in refused.content
    response = marketing_client.post(
        url, _form(shown, stock="50", change_reason="Recount", **{"initial-stock": "9"})
    )
    assert response.status_code == 302
    reward.refresh_from_db()
    assert reward.stock == 50
    assert _audit(reward, "reward.stock_change").get().before == {"stock": 9}


def _coupon(**fields):
    return RewardFactory(category="coupon", **fields)


def _upload(client, reward, content: bytes):
    return client.post(
        f"{REWARDS}{reward.pk}/codes/upload/",
        {"file": SimpleUploadedFile("codes.csv", content, content_type="text/csv")},
        follow=True,
    )


def test_a_csv_upload_adds_new_codes_and_counts_duplicates(marketing_client):
    reward = _coupon()
    codes_add(reward=reward, codes=[("EXIST-0001", None)], actor=None)
    page = marketing_client.get(f"{REWARDS}{reward.pk}/codes/upload/")
    assert page.status_code == 200
    assert b'type="file"' in page.content
    csv = b"\xef\xbb\xbfcode,expires_on\nNEW-0001,2030-01-31\nNEW-0002,\nEXIST-0001,\nNEW-0001,\n"
    response = _upload(marketing_client, reward, csv)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"{REWARDS}{reward.pk}/change/"
    assert "2 codes added, 2 already in the pool or repeated." in _messages(response)
    assert set(reward.codes.values_list("code", flat=True)) == {
        "EXIST-0001",
        "NEW-0001",
        "NEW-0002",
    }
    assert str(reward.codes.get(code="NEW-0001").expires_on) == "2030-01-31"
    audit = _audit(reward, "reward.codes_add").latest("id")
    assert audit.after == {"added": 2, "duplicates": 2, "via": "csv"}
    assert audit.actor == marketing_client.user
    # The change form shows the pool and its links.
    change = marketing_client.get(f"{REWARDS}{reward.pk}/change/")
    assert "3 free, 0 given" in change.content.decode()
    assert f"{REWARDS}{reward.pk}/codes/generate/" in change.content.decode()


def test_a_bad_csv_file_shows_each_bad_line_and_adds_nothing(marketing_client):
    reward = _coupon()
    before = database_state()
    response = _upload(
        marketing_client, reward, b"code,expires_on\nGOOD-0001,\nab,\nOK-0002,31/12\n"
    )
    assert response.status_code == 200
    assert response.redirect_chain == []
    errors = response.context["form"].non_field_errors()
    assert any(error.startswith("line 3:") for error in errors)
    assert "line 4: expires_on is not a date" in errors
    assert database_state() == before
    no_header = _upload(marketing_client, reward, b"voucher\nGOOD-0001\n")
    assert no_header.context["form"].non_field_errors() == [
        "The CSV file needs a header line with a 'code' column."
    ]
    extra = _upload(marketing_client, reward, b"code,expires_on\nGOOD-0001,\n\nBAD-0002,,x\n")
    assert extra.context["form"].errors["file"] == [
        "line 3: more values than the header has columns"
    ]
    not_utf8 = _upload(marketing_client, reward, "code\nCAFÉ-0001\n".encode("latin-1"))
    assert not_utf8.context["form"].errors["file"] == ["The CSV file is not UTF-8."]
    assert database_state() == before


def test_generate_adds_the_codes_asked_for(marketing_client):
    reward = _coupon()
    url = f"{REWARDS}{reward.pk}/codes/generate/"
    assert marketing_client.get(url).status_code == 200
    pattern = {"count": "25", "code_prefix": "TST", "length": "8", "expires_on": ""}
    before = database_state()
    confirm = marketing_client.post(url, pattern)
    assert confirm.status_code == 200  # a confirmation page first: what will be generated
    assert "25 new random codes like TSTXXXXXXXX" in confirm.content.decode()
    assert b'name="confirm" value="yes"' in confirm.content
    assert database_state() == before  # the question alone generates nothing
    response = marketing_client.post(url, {**pattern, "confirm": "yes"}, follow=True)
    assert "25 codes generated." in _messages(response)
    codes = list(reward.codes.values_list("code", flat=True))
    assert len(codes) == 25
    assert all(code.startswith("TST") and len(code) == 11 for code in codes)
    assert _audit(reward, "reward.codes_add").get().after["via"] == "generate"


def test_codes_are_refused_for_a_gift_and_for_staff_without_the_permission(
    marketing_client, client
):
    gift = RewardFactory(category="gift")
    before = database_state()
    response = marketing_client.post(
        f"{REWARDS}{gift.pk}/codes/generate/", {"count": "5", "code_prefix": "", "length": "8"}
    )
    assert response.status_code == 200
    assert "Only coupon and voucher rewards have a code pool." in str(
        response.context["form"].non_field_errors()
    )
    assert database_state() == before
    coupon = _coupon()
    viewer = _client_for(client, roles.OPERATIONS)  # may see rewards, not add codes
    before = database_state()
    refused = viewer.post(
        f"{REWARDS}{coupon.pk}/codes/generate/", {"count": "5", "code_prefix": "", "length": "8"}
    )
    assert refused.status_code == 403
    assert database_state() == before


def _redemption(*, cash="0.00", price=100):
    member = MemberFactory()
    fund(member, 1000)
    reward = RewardFactory(points_price=price, cash_price=Decimal(cash), stock=5)
    return redemption_create(member=member, reward_id=reward.pk)


def _action(client, action: str, *redemptions: Redemption, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(r.pk) for r in redemptions], **extra}
    if "apply" not in extra:
        data["index"] = "0"
    return client.post(REDEMPTIONS, data, follow=True)


def test_the_fulfil_action_fulfils_through_the_service(operations_client):
    redemption = _redemption()
    response = _action(operations_client, "fulfil", redemption)
    assert response.status_code == 200
    assert "1 redemptions fulfilled." in _messages(response)
    redemption.refresh_from_db()
    assert redemption.status == "fulfilled"
    assert redemption.fulfilled_by == operations_client.user
    assert AuditLog.objects.filter(action="redemption.fulfil", actor=operations_client.user)
    again = _action(operations_client, "fulfil", redemption)
    assert "1 were fulfilled already." in _messages(again)


def test_the_fulfil_action_reports_an_unpaid_co_payment_and_changes_nothing(operations_client):
    unpaid = _redemption(cash="99.00")
    before = database_state()
    response = _action(operations_client, "fulfil", unpaid)
    assert response.status_code == 200
    assert _messages(response) == [
        f"{unpaid.member.customer_no} · {unpaid.reward.code} · {unpaid.pk}: "
        "The cash co-payment of this redemption is not paid yet."
    ]
    assert database_state() == before


def test_the_cancel_action_asks_a_reason_then_refunds_through_the_service(operations_client):
    redemption = _redemption(price=300)
    balance = Account.objects.get(member=redemption.member).balance
    before = database_state()
    page = _action(operations_client, "cancel", redemption)
    assert page.status_code == 200
    assert b'name="reason"' in page.content
    assert database_state() == before  # the question alone changes nothing
    response = _action(
        operations_client,
        "cancel",
        redemption,
        apply="1",
        select_across="0",
        reason="Out of delivery area",
    )
    assert response.status_code == 200
    assert "1 redemptions cancelled; their points are back." in _messages(response)
    redemption.refresh_from_db()
    assert redemption.status == "cancelled"
    assert (redemption.cancelled_by, redemption.cancel_reason) == (
        operations_client.user,
        "Out of delivery area",
    )
    assert Account.objects.get(member=redemption.member).balance == balance + 300
    audit = AuditLog.objects.get(action="redemption.cancel", target_id=str(redemption.pk))
    assert audit.reason == "Out of delivery area"
    assert points_reconcile()[1] == []


def test_the_cancel_action_reports_a_fulfilled_redemption_and_changes_nothing(
    operations_client,
):
    fulfilled = redemption_fulfil(redemption=_redemption(), actor=None)
    before = database_state()
    response = _action(
        operations_client, "cancel", fulfilled, apply="1", select_across="0", reason="Too late"
    )
    assert response.status_code == 200
    assert _messages(response) == [
        f"{fulfilled.member.customer_no} · {fulfilled.reward.code} · {fulfilled.pk}: "
        "This redemption was already fulfilled or cancelled."
    ]
    assert database_state() == before


def test_a_cancel_the_database_refuses_is_reported_not_a_server_error(operations_client):
    """A redemption made before its reward had a monthly budget added nothing to the month;
    cancelling it after a cheaper one did subtracts more than the month holds, which the
    budget's check constraint refuses (a defect of ``redemption_cancel``): the action reports
    it and goes on, with nothing changed."""
    member = MemberFactory()
    fund(member, 5000)
    reward = RewardFactory(points_price=600)
    early = redemption_create(member=member, reward_id=reward.pk)
    reward = reward_update(
        reward=reward, actor=None, changes={"monthly_points_budget": 10_000, "points_price": 300}
    )
    redemption_create(member=member, reward_id=reward.pk)
    before = database_state()
    response = _action(
        operations_client, "cancel", early, apply="1", select_across="0", reason="Asked to"
    )
    assert response.status_code == 200
    early.refresh_from_db()
    if early.status == "pending":  # refused: the defect is still there
        assert _messages(response) == [
            f"{member.customer_no} · {reward.code} · {early.pk}: "
            "the database refused the change; nothing was changed."
        ]
        assert database_state() == before
    else:  # fixed in the service: cancelled, its points back
        assert early.status == "cancelled"
        assert points_reconcile()[1] == []


def test_staff_without_the_permissions_are_not_offered_the_actions(client):
    redemption = _redemption()
    viewer = _client_for(client, roles.INTEGRATION)  # may see redemptions, not decide them
    page = viewer.get(REDEMPTIONS)
    assert page.status_code == 200
    assert b'value="fulfil"' not in page.content
    before = database_state()
    for action in ("fulfil", "cancel"):
        response = _action(viewer, action, redemption)
        assert response.status_code == 200
        assert database_state() == before
    assert viewer.get(f"{REDEMPTIONS}{redemption.pk}/change/").status_code == 200


def test_a_redemption_is_never_added_edited_or_deleted_in_the_admin(superuser_client):
    redemption = _redemption()
    before = database_state()
    assert superuser_client.get(f"{REDEMPTIONS}add/").status_code == 403
    assert superuser_client.post(f"{REDEMPTIONS}{redemption.pk}/delete/").status_code == 403
    page = superuser_client.get(f"{REDEMPTIONS}{redemption.pk}/change/")
    assert page.status_code == 200
    assert b'name="status"' not in page.content  # read-only
    superuser_client.post(f"{REDEMPTIONS}{redemption.pk}/change/", {"status": "fulfilled"})
    assert database_state() == before


@pytest.mark.parametrize("model", ["reward", "couponcode", "redemption", "budgetmonth"])
def test_every_rewards_changelist_answers(superuser_client, model):
    coupon = _coupon(monthly_points_budget=10_000)
    codes_add(reward=coupon, codes=[("CODE-0001", None), ("CODE-0002", None)], actor=None)
    member = MemberFactory()
    fund(member, 1000)
    redemption_create(member=member, reward_id=coupon.pk)
    _redemption(cash="99.00")
    assert BudgetMonth.objects.exists()
    assert CouponCode.objects.filter(redemption__isnull=False).exists()
    response = superuser_client.get(f"/admin/rewards/{model}/")
    assert response.status_code == 200
    queries = {
        "reward": ["?q=reward", "?category__exact=coupon&active__exact=1"],
        "couponcode": ["?state=free", "?state=given", "?q=CODE", f"?reward__id__exact={coupon.pk}"],
        "redemption": ["?status__exact=pending", f"?q={member.customer_no}"],
        "budgetmonth": [f"?reward__id__exact={coupon.pk}"],
    }
    for query in queries[model]:
        assert superuser_client.get(f"/admin/rewards/{model}/{query}").status_code == 200
    assert superuser_client.get(f"{REWARDS}{coupon.pk}/change/").status_code == 200
    if model == "reward":
        assert "1 / 1" in response.content.decode()  # free / given codes of the coupon
