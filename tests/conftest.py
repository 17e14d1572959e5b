from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from loyalty import roles
from members.authentication import member_token_issue
from tests.factories import MemberFactory, UserFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request in zh-hans (LocaleMiddleware
    activates it for the thread and leaves it there) must not decide a later test's."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def api():
    """An API client with no credentials."""
    return APIClient()


def _client_for_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def staff_client(db):
    """``staff_client(role, ...)``: an API client holding a JWT of a user with those roles."""

    def make(*role_names: str, user=None) -> APIClient:
        from rest_framework_simplejwt.tokens import RefreshToken

        user = user or UserFactory(roles=list(role_names))
        client = _client_for_token(str(RefreshToken.for_user(user).access_token))
        client.user = user  # type: ignore[attr-defined]  # a test-only extra
        return client

    return make


@pytest.fixture
def member_client(db):
    """``member_client(member=None)``: an API client holding that member's token."""

    def make(member=None) -> APIClient:
        member = member or MemberFactory()
        client = _client_for_token(str(member_token_issue(member=member).access_token))
        client.member = member  # type: ignore[attr-defined]  # a test-only extra
        return client

    return make


@pytest.fixture
def admin_api(staff_client):
    return staff_client(roles.PROGRAMME_ADMIN)


@pytest.fixture
def integration_api(staff_client):
    return staff_client(roles.INTEGRATION)


class CeleryWorkerProcess:
    """A real ``celery -A config worker`` on Redis, consuming one queue, against the test
    database (which a ``transaction=True`` test shares with it) and the test process's cache
    (a Redis database of its own per test process: ``config/settings/test.py``)."""

    def __init__(
        self, *, queue: str, database_name: str, log_path, extra_env=None, args=()
    ) -> None:
        import os
        import sys

        from django.conf import settings
        from django.db import connection

        db = connection.settings_dict
        self.queue = queue
        self.log_path = log_path
        self.command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            *args,
        ]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                f"{database_name}"
            ),
            "REDIS_URL": settings.REDIS_URL,
            # The producer's coalescing marker and the worker's clearing of it meet here.
            "TEST_CACHE_URL": settings.CACHES["default"]["LOCATION"],
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            **(extra_env or {}),
        }
        self.process: Any = None  # a subprocess.Popen once started

    def start(self) -> None:
        import subprocess

        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker has declared its queue (Redis drops messages to an exchange with no
        bound queue, so producing earlier could lose the message)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_tail(200):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"celery worker not ready:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the worker and everything it started: no clean shutdown, no ack."""
        import os
        import signal

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def broker_keys_delete(queue: str) -> None:
    """Delete a test's queue from the broker: its messages, its binding, and the messages its
    workers left unacknowledged (kept under keys of the queue by ``config/settings/test.py``)."""
    from config.celery import app

    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        client.delete(
            queue,
            f"_kombu.binding.{queue}",
            f"_kombu.binding_permanent.{queue}",
            f"unacked:{queue}",
            f"unacked_index:{queue}",
            f"unacked_mutex:{queue}",
        )
        # Messages sent with a priority wait in lists named after the queue.
        for key in client.scan_iter(match=f"{queue}\x06*"):
            client.delete(key)


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """``start(*args, **env)`` a real worker on a queue of its own (``args``: more command-line
    options, e.g. ``--beat``); the producer side (this process) sends to that queue through
    Redis instead of running tasks eagerly. Workers are stopped before the test database is
    flushed; the queue, and whatever they left unacknowledged in it, is deleted afterwards."""
    import uuid

    from django.db import connection

    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    workers: list[CeleryWorkerProcess] = []
    saved = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue

    def start(*args: str, **extra_env) -> CeleryWorkerProcess:
        worker = CeleryWorkerProcess(
            queue=queue,
            database_name=connection.settings_dict["NAME"],
            log_path=tmp_path / f"worker-{len(workers)}.log",
            extra_env={key: str(value) for key, value in extra_env.items()},
            args=args,
        )
        worker.start()
        workers.append(worker)
        worker.wait_ready()
        return worker

    start.queue = queue
    start.workers = workers
    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_always_eager, app.conf.task_default_queue = saved
    broker_keys_delete(queue)


@pytest.fixture
def business_clock():
    """The clock frozen at the real current instant for the test (``tests.clock``):
    ``business_clock.now``, ``business_clock.today`` (the business day)."""
    from tests.clock import BusinessClock, frozen_clock

    with frozen_clock() as traveller:
        yield BusinessClock(traveller)
