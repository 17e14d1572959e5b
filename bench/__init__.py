"""Benchmarks that print figures (and ratios against a baseline measured in the same run).

They are not tests: nothing here passes or fails on a number. Run all with ``make bench`` or
one with ``python -m bench.<name>``.
"""

import os
import resource
import sys


def peak_memory() -> str:
    """The peak resident memory of this process and of the largest finished child process
    (workers and servers the benchmark started and stopped), in MiB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20
    return f"peak memory: this process {own:,.0f} MiB, largest child process {children:,.0f} MiB"


def django_on(database_url: str) -> None:
    """Set Django up in this process on ``database_url`` (a benchmark's scratch database) with
    the development settings: no Redis (tasks in-process), the development secret key, logs
    at WARNING unless ``LOG_LEVEL`` says otherwise."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.default")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
