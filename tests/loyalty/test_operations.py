"""Health, readiness, the OpenAPI schema and docs, the deploy check, and the demo seed."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from members.models import AssetSnapshot, Member
from tests.factories import database_state

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_200(client):
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_broker_when_it_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert set(body["failed"]) == {"broker"}


@pytest.mark.django_db
def test_schema_describes_the_api_and_docs_use_no_cdn(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in [
        "/api/v1/auth/token/",
        "/api/v1/auth/member-token/",
        "/api/v1/me/",
        "/api/v1/members/",
        "/api/v1/members/{customer_no}/",
        "/api/v1/ingest/asset-snapshots/",
    ]:
        assert path in paths, path
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    external = [
        url for url in re.findall(r'(?:src|href)="([^"]+)"', html) if url.startswith("http")
    ]
    assert external == []


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process under the default (production) settings module."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.default", **env}
    for name in [name for name, value in env.items() if value is None]:
        environment.pop(name)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_environment():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x9$Lq2!vN7@pR4#tW8^zK1&mB5*hJ3(dF6)sG0_aQ-yE+uC=oI",
        ALLOWED_HOSTS="loyalty.bank.example",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/loyalty",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _manage("check", DEBUG="0", ALLOWED_HOSTS="loyalty.bank.example", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_seed_demo_twice_duplicates_nothing(capsys):
    call_command("seed_demo", members=40, months=3, force=True)
    counts = {table: rows for table, (rows, _) in database_state().items()}
    out = capsys.readouterr().out
    assert "integration" in out
    assert "-demo-2026" in out
    call_command("seed_demo", members=40, months=3, force=True)
    # Not a row more in any table: members, snapshots, staff, rules, inbox, ledger, tiers...
    assert {table: rows for table, (rows, _) in database_state().items()} == counts
    assert (Member.objects.count(), AssetSnapshot.objects.count()) == (40, 120)


@pytest.mark.django_db
def test_readyz_without_a_broker_configured_is_ready_and_says_so(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "not configured"}


DEMO_SCRIPT = """
import datetime as dt
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken
from django.contrib.auth.models import User
from django.utils import timezone
from loyalty.timeutils import business_today
from members.models import TierHistory
from points.models import Entry

def client(username):
    c = APIClient()
    token = RefreshToken.for_user(User.objects.get(username=username)).access_token
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return c

today = business_today()
integration = client("integration")
snapshot = {"customer_no": "D0000001", "as_of": str(today), "deposits": "5"}
print("snapshots", integration.post("/api/v1/ingest/asset-snapshots/", {"snapshots": [snapshot]},
                                    format="json").status_code)
# An hour ago, not 10:00 of today: before 10:00 in Shanghai that is in the future (refused).
moment = timezone.now() - dt.timedelta(hours=1)
ingested = integration.post("/api/v1/ingest/transactions/", {"transactions": [
    {"external_id": "DEMO-T1", "customer_no": "D0000001", "type": "card_spend", "amount": "100.00",
     "occurred_at": moment.isoformat(), "channel": "pos"}]}, format="json")
print("transactions", ingested.status_code, ingested.json()["accepted"])
token = integration.post("/api/v1/auth/member-token/", {"customer_no": "D0000001"},
                         format="json").json()["access"]
member = APIClient()
member.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
print("me", member.get("/api/v1/me/").status_code)
print("points", member.get("/api/v1/me/points/entries/").status_code)
credited = Entry.objects.filter(transaction__external_id="DEMO-T1", kind="earn", points__gt=0)
print("credited", "yes" if credited.exists() else "no")
admin = client("admin")
print("history", "some" if TierHistory.objects.exists() else "none")
evaluate = admin.post("/api/v1/tiers/evaluate/", {}, format="json")
print("evaluate", evaluate.status_code)
run = admin.get(f"/api/v1/tiers/runs/{evaluate.json()['run_id']}/").json()
print("run", run["status"])
simulate = admin.post("/api/v1/tiers/simulate/", {}, format="json")
print("simulate", simulate.status_code)
"""


DEMO_SCRIPT_PRINTS = set(re.findall(r'^print\("(\w+)"', DEMO_SCRIPT, re.MULTILINE))


@pytest.mark.django_db(transaction=True)
def test_the_demo_migrates_seeds_and_serves_every_feature():
    """``make run``'s set-up: a fresh PostgreSQL database, tasks in-process, no Redis."""
    from django.db import connection

    name = f"demo_{os.getpid()}"
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD'] or ''}"
        f"@{settings_dict['HOST']}:{settings_dict['PORT']}/{name}"
    )
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"DATABASE_URL": url, "REDIS_URL": "", "DEBUG": "1"}
        for args in (("migrate", "--noinput"), ("seed_demo", "--members", "30", "--months", "3")):
            result = _manage(*args, **env)
            assert result.returncode == 0, result.stdout + result.stderr
        result = _manage("shell", "-c", DEMO_SCRIPT, **env)
        assert result.returncode == 0, result.stderr
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    printed = (line.partition(" ") for line in result.stdout.splitlines())
    lines = {name: value for name, _, value in printed if name in DEMO_SCRIPT_PRINTS}
    assert lines == {
        "snapshots": "202",
        "transactions": "202 1",  # accepted
        "me": "200",
        "points": "200",
        "credited": "yes",  # tasks in-process: the consumer credited it as the ingest committed
        "history": "some",  # seed_demo placed the members with a first evaluation
        "evaluate": "202",
        "run": "done",  # tasks in-process: the run finished within the request
        "simulate": "200",
    }
