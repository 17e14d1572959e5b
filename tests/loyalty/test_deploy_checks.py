"""``manage.py check --deploy``: the service's own production checks, and DEBUG off by default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]
LONG_KEY = "k" * 32


def _deploy_ids() -> set[str]:
    return {
        message.id
        for message in run_checks(include_deployment_checks=True)
        if message.id and message.id.startswith("loyalty.")
    }


def _errors(check_id: str) -> list:
    return [m for m in run_checks(include_deployment_checks=True) if m.id == check_id]


@pytest.mark.parametrize("hosts", [["*"], ["loyalty.bank.example", "*"], ["*.bank.example"]])
def test_a_wildcard_in_allowed_hosts_is_an_error(settings, hosts):
    settings.ALLOWED_HOSTS = hosts
    [error] = _errors("loyalty.E001")
    assert error.is_serious()
    assert "ALLOWED_HOSTS" in error.hint


@override_settings(ALLOWED_HOSTS=["loyalty.bank.example", ".internal.bank.example"])
def test_named_allowed_hosts_pass():
    assert "loyalty.E001" not in _deploy_ids()


def test_a_short_jwt_signing_key_is_an_error(settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": "k" * 31}
    [error] = _errors("loyalty.E002")
    assert error.is_serious()
    assert "JWT_SIGNING_KEY" in error.hint


def test_a_jwt_signing_key_of_32_characters_passes(settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": LONG_KEY}
    assert "loyalty.E002" not in _deploy_ids()


def test_the_jwt_signing_key_defaults_to_the_secret_key(settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": ""}
    settings.SECRET_KEY = "short-secret"
    assert "loyalty.E002" in _deploy_ids()
    settings.SECRET_KEY = LONG_KEY
    assert "loyalty.E002" not in _deploy_ids()


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_a_database_other_than_postgresql_is_an_error(settings):
    settings.DATABASES = {
        **settings.DATABASES,
        "reports": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    }
    [error] = _errors("loyalty.E003")
    assert error.is_serious()
    assert "reports" in error.msg
    assert "DATABASE_URL" in error.hint


def test_postgresql_passes():
    assert "loyalty.E003" not in _deploy_ids()


def test_the_checks_run_only_in_a_deploy_check(settings):
    settings.ALLOWED_HOSTS = ["*"]
    assert not [m for m in run_checks() if m.id == "loyalty.E001"]


def _settings_debug(**env: str | None) -> str:
    """DEBUG as config.settings.default computes it in a fresh process with ``env``."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.default",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "loyalty.bank.example",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/loyalty",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
    }
    environment.pop("DEBUG", None)
    environment.update({name: value for name, value in env.items() if value is not None})
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_debug_is_off_when_the_environment_does_not_set_it():
    assert _settings_debug() == "False"
    assert _settings_debug(DEBUG="") == "False"


def test_debug_is_on_only_when_the_environment_says_so():
    assert _settings_debug(DEBUG="1") == "True"
    assert _settings_debug(DEBUG="0") == "False"


def test_check_deploy_fails_naming_the_wildcard_host():
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.default",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "*",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/loyalty",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "loyalty.E001" in result.stderr
