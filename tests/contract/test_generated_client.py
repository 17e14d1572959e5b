"""A client generated from the schema (openapi-python-client) runs a banking app's flow against
the live server: the CRM creates a customer, the core banking system sends transactions (one of
them refunded), the gateway exchanges the customer's session for a member token, and the app
reads the profile, points, ledger and tier, then refreshes its token.

Everything goes through the generated typed models and functions, as an app built on the schema
would: a component renamed, a field retyped or a response left undocumented breaks this test the
way it would break such an app. The client is generated into a temporary directory, never into the
checkout.
"""

from __future__ import annotations

import datetime as dt
import importlib
import secrets
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import ROOT, LiveServer

pytestmark = pytest.mark.contract

PACKAGE = "loyalty_api_client"


class Generated:
    """The generated package, its modules reachable by dotted name below it."""

    def __init__(self, package: types.ModuleType) -> None:
        self.package = package

    def __getattr__(self, dotted: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.{dotted}")

    def module(self, dotted: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.{dotted}")


@pytest.fixture(scope="module")
def api(contract_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``manage.py spectacular`` writes the schema, openapi-python-client generates a package
    from it (failing on any warning: a part of the schema it cannot type), and it is imported."""
    workdir = tmp_path_factory.mktemp("generated-client")
    schema_path = workdir / "schema.yaml"
    subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--file", str(schema_path)],
        cwd=ROOT,
        env=contract_server.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = workdir / "generator.yaml"
    # No post hooks: formatting the generated code with ruff is of no use to a test.
    config.write_text("post_hooks: []\n")
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(schema_path),
            "--output-path",
            str(workdir / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"client generation failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(workdir))
    try:
        yield Generated(importlib.import_module(PACKAGE))
    finally:
        sys.path.remove(str(workdir))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_banking_app_flow(api: Any, contract_server: LiveServer) -> None:
    models = api.models
    client_module = api.package
    base_url = contract_server.base_url
    anonymous = client_module.Client(base_url=base_url, raise_on_unexpected_status=True)

    # The integration account signs in.
    username, password = contract_server.credentials["integration"]
    pair = api.module("api.auth.v1_auth_token_create").sync(
        client=anonymous, body=models.TokenObtainPairRequest(username=username, password=password)
    )
    assert isinstance(pair, models.TokenObtainOutput)
    integration = client_module.AuthenticatedClient(
        base_url=base_url, token=pair.access, raise_on_unexpected_status=True
    )

    # The CRM creates the customer (201), then updates them (200).
    customer_no = f"CT{secrets.token_hex(6).upper()}"
    members_update = api.module("api.members.v1_members_update")
    created = members_update.sync_detailed(
        customer_no,
        client=integration,
        body=models.MemberDetailInputRequest(
            name="Contract Test",
            gender=models.GenderEnum.FEMALE,
            phone="13800001234",
            email="contract@example.com",
            preferred_language=models.PreferredLanguageEnum.EN,
            marketing_consent=True,
            joined_at=dt.date(2024, 3, 1),
        ),
    )
    assert created.status_code == 201, created.content
    member = created.parsed
    assert isinstance(member, models.MemberDetailOutput)
    assert member.customer_no == customer_no
    assert member.name == "Contract Test"
    assert member.gender == models.GenderEnum.FEMALE
    assert member.status == models.MemberStatusEnum.ACTIVE
    assert member.phone != "13800001234"
    assert member.phone.endswith("1234")
    assert isinstance(member.created_at, dt.datetime)
    assert isinstance(member.points, models.PointsSummaryOutput)
    assert member.points.balance == 0
    updated = members_update.sync_detailed(
        customer_no, client=integration, body=models.MemberDetailInputRequest(city="Shanghai")
    )
    assert updated.status_code == 200, updated.content
    assert isinstance(updated.parsed, models.MemberDetailOutput)
    assert updated.parsed.city == "Shanghai"
    assert updated.parsed.name == "Contract Test"

    # The core banking system sends two card purchases, a refund of the first, and one item for an
    # unknown customer, which is rejected on its own.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    prefix = f"ct-{secrets.token_hex(4)}"

    def spend(external_id: str, amount: str, hours_ago: int, **extra: Any) -> Any:
        return models.TransactionItemRequest(
            external_id=external_id,
            customer_no=extra.pop("customer_no", customer_no),
            type_=models.TypeEnum.CARD_SPEND,
            amount=amount,
            occurred_at=now - dt.timedelta(hours=hours_ago),
            channel=models.ChannelEnum.POS,
            merchant_category="5411",
            **extra,
        )

    batch = models.TransactionIngestInputRequest(
        transactions=[
            spend(f"{prefix}-a", "1000.00", 5),
            spend(f"{prefix}-b", "400.00", 4),
            spend(f"{prefix}-a-refund", "1000.00", 3, reverses=f"{prefix}-a"),
            spend(f"{prefix}-x", "50.00", 2, customer_no=f"{customer_no}X"),
        ]
    )
    ingest = api.module("api.ingest.v1_ingest_transactions_create")
    answer = ingest.sync_detailed(client=integration, body=batch)
    assert answer.status_code == 202, answer.content
    counts = answer.parsed
    assert isinstance(counts, models.TransactionIngestOutput)
    assert (counts.accepted, counts.duplicates) == (3, 0)
    assert len(counts.rejected) == 1
    rejection = counts.rejected[0]
    assert isinstance(rejection, models.BatchRejection)
    assert rejection.index == 3
    assert all(isinstance(error, models.FieldError) for error in rejection.errors)
    assert "customer_no" in {error.field for error in rejection.errors}
    # Sent again, the same batch stores nothing new.
    again = ingest.sync(client=integration, body=batch)
    assert isinstance(again, models.TransactionIngestOutput)
    assert (again.accepted, again.duplicates) == (0, 3)

    # The gateway exchanges the customer's session for a member token.
    issued = api.module("api.auth.v1_auth_member_token_create").sync(
        client=integration, body=models.MemberTokenInputRequest(customer_no=customer_no)
    )
    assert isinstance(issued, models.MemberTokenOutput)
    assert issued.customer_no == customer_no
    app = client_module.AuthenticatedClient(
        base_url=base_url, token=issued.access, raise_on_unexpected_status=True
    )

    # The app: profile, points summary, ledger, tier.
    me = api.module("api.me.v1_me_retrieve").sync(client=app)
    assert isinstance(me, models.MeOutput)
    assert me.customer_no == customer_no
    assert me.city == "Shanghai"
    assert me.phone == member.phone
    assert me.tier is None or isinstance(me.tier, models.TierRef)

    summary = api.module("api.me.v1_me_points_retrieve").sync(client=app)
    assert isinstance(summary, models.PointsSummaryOutput)
    assert summary.pending == 0, "tasks run eagerly: everything is credited by now"
    assert all(isinstance(item, models.Expiring) for item in summary.expiring)

    page = api.module("api.me.v1_me_points_entries_list").sync(client=app)
    assert isinstance(page, models.PaginatedEntryOutputList)
    entries = page.results
    assert all(isinstance(entry, models.EntryOutput) for entry in entries)
    kinds = sorted(entry.kind for entry in entries)
    kind = models.EntryOutputKindEnum
    assert kinds == sorted([kind.EARN, kind.EARN, kind.REVERSE]), kinds
    earned = sorted(entry.points for entry in entries if entry.kind == kind.EARN)
    reversed_ = [entry.points for entry in entries if entry.kind == kind.REVERSE]
    assert all(points > 0 for points in earned)
    # The refund takes back what the first (larger) purchase earned; the second one's points stay.
    assert reversed_ == [-earned[-1]]
    assert summary.balance == earned[0] == me.points_balance
    assert summary.balance == sum(entry.points for entry in entries)
    newest = max(entries, key=lambda entry: (entry.occurred_at, entry.balance_after))
    assert newest.balance_after == summary.balance
    assert all(isinstance(entry.occurred_at, dt.datetime) for entry in entries)
    assert all(entry.description for entry in entries)

    tier = api.module("api.me.v1_me_tier_retrieve").sync(client=app)
    assert isinstance(tier, models.MeTierOutput)
    assert tier.tier is None or isinstance(tier.tier, models.TierRef)
    assert isinstance(tier.multiplier, str)
    assert all(isinstance(benefit, models.BenefitOutput) for benefit in tier.benefits)
    assert tier.next_tier is None or isinstance(tier.next_tier, models.NextTier)

    # The token is refreshed, and the new one reads the same profile.
    refreshed = api.module("api.auth.v1_auth_token_refresh_create").sync(
        client=anonymous, body=models.TokenRefreshInputRequest(refresh=issued.refresh)
    )
    assert isinstance(refreshed, models.TokenRefreshOutput)
    assert refreshed.access
    assert refreshed.access != issued.access
    renewed = client_module.AuthenticatedClient(
        base_url=base_url, token=refreshed.access, raise_on_unexpected_status=True
    )
    again_me = api.module("api.me.v1_me_retrieve").sync(client=renewed)
    assert isinstance(again_me, models.MeOutput)
    assert again_me.customer_no == customer_no

    # A staff endpoint refuses a member token with a typed problem.
    other = api.module("api.members.v1_members_retrieve").sync_detailed(
        contract_server.member_customer_no, client=app
    )
    assert other.status_code in (403, 404), other.content
    assert isinstance(other.parsed, models.Problem)
