"""The deployment files: gunicorn's settings load and limit requests; the compose file runs
every process type from the one image."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_settings_limit_requests_and_load_the_app():
    values = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    assert (values["limit_request_line"], values["limit_request_fields"]) == (8190, 100)
    assert values["limit_request_field_size"] == 8190
    assert values["worker_class"] == "gthread"
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "config/gunicorn.py",
         "config.wsgi"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings.default"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_process_type_from_the_image():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    commands = {name: " ".join(services[name]["command"]) for name in ("web", "worker", "beat")}
    assert "gunicorn -c config/gunicorn.py config.wsgi" in commands["web"]
    assert commands["worker"].startswith("celery -A config worker")
    assert commands["beat"].startswith("celery -A config beat")
    for name in ("web", "worker", "beat"):
        assert services[name]["build"] == "."
        assert services[name]["environment"]["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"
