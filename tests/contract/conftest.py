"""A live server for the contract tests: gunicorn on a free port of 127.0.0.1, on a scratch
PostgreSQL database of its own (``loyalty_contract_<pid>_<random>``, created, migrated and seeded
with ``seed_demo`` here, dropped at the end), with Celery tasks eager so ingested transactions are
credited within the request.

The database server is the one the test settings name (``DATABASE_URL``, or the embedded one that
``make test`` starts); no other database on it is touched. One server per test process, so
``pytest -n 2`` workers each run their own on their own port and database.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
SERVER_START_SECONDS = 60
# Seeded members: D0000001 .. D00000NN, the first ones with a few weeks of credited transactions.
SEED_MEMBERS = 12
MEMBER_CUSTOMER_NO = "D0000001"


@dataclass
class LiveServer:
    """What a contract test needs: where the server is and who may call it."""

    base_url: str
    database: str
    env: dict[str, str]
    log_path: Path
    # Staff and service accounts that seed_demo creates: role name -> (username, password).
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Bearer tokens per caller: "admin", "integration", "member".
    tokens: dict[str, str] = field(default_factory=dict)
    member_customer_no: str = MEMBER_CUSTOMER_NO

    def headers(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[caller]}"}

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_params() -> dict[str, Any]:
    """Host, port, user and password of the PostgreSQL server the test settings use."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
    }


def _admin_sql(params: dict[str, Any], statement: sql.Composed) -> None:
    """Run one statement on the server's maintenance database, outside a transaction."""
    with psycopg.connect(
        dbname="postgres",
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"] or None,
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        conn.execute(statement)


def _database_url(params: dict[str, Any], name: str) -> str:
    auth = params["user"] + (f":{params['password']}" if params["password"] else "")
    return f"postgres://{auth}@{params['host']}:{params['port']}/{name}"


def _run(command: list[str], *, env: dict[str, str], log_path: Path, what: str) -> None:
    with log_path.open("ab") as log:
        result = subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=300,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _wait_ready(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"the live server did not become ready at {base_url}:\n{tail}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _token(base_url: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token/",
        json={"username": username, "password": password},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


def _member_token(base_url: str, integration_token: str, customer_no: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/member-token/",
        json={"customer_no": customer_no},
        headers={"Authorization": f"Bearer {integration_token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


@pytest.fixture(scope="session")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """gunicorn serving this checkout on a scratch database, seeded, with tokens for an admin
    (superuser with the programme_admin role), the integration account and a member."""
    from django.conf import settings

    from loyalty import roles
    from members.management.commands.seed_demo import DEMO_PASSWORD_SUFFIX

    params = _server_params()
    database = f"loyalty_contract_{os.getpid()}_{secrets.token_hex(3)}"
    workdir = tmp_path_factory.mktemp("contract-server")
    log_path = workdir / "server.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(params, database),
        "REDIS_URL": settings.REDIS_URL,
        # Production-like: no debug pages, a real secret, only the local host served.
        "DEBUG": "0",
        "SECRET_KEY": "contract-" + secrets.token_hex(16),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        # Tasks in-process: an ingest request credits its transactions before it answers.
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "JWT_ACCESS_MINUTES": "120",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "60",
        "PYTHONUNBUFFERED": "1",
    }
    _admin_sql(params, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    process: subprocess.Popen | None = None
    try:
        python = sys.executable
        _run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=env,
            log_path=log_path,
            what="migrate",
        )
        _run(
            [python, "manage.py", "seed_demo", "--members", str(SEED_MEMBERS), "--force"],
            env=env,
            log_path=log_path,
            what="seed_demo",
        )
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(Path(python).parent / "gunicorn"),
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--worker-class",
                    "gthread",
                    "--threads",
                    "4",
                    "--timeout",
                    "120",
                    "--graceful-timeout",
                    "5",
                    "--log-level",
                    "warning",
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_ready(base_url, process, log_path)
        credentials = {
            roles.PROGRAMME_ADMIN: ("admin", f"admin{DEMO_PASSWORD_SUFFIX}"),
            roles.INTEGRATION: ("integration", f"integration{DEMO_PASSWORD_SUFFIX}"),
        }
        server = LiveServer(
            base_url=base_url,
            database=database,
            env=env,
            log_path=log_path,
            credentials=credentials,
        )
        server.tokens["admin"] = _token(base_url, *credentials[roles.PROGRAMME_ADMIN])
        server.tokens["integration"] = _token(base_url, *credentials[roles.INTEGRATION])
        server.tokens["member"] = _member_token(
            base_url, server.tokens["integration"], MEMBER_CUSTOMER_NO
        )
        yield server
    finally:
        if process is not None:
            _stop(process)
        _admin_sql(
            params,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)),
        )
