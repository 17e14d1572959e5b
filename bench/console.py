"""Staff console pages on the demo data: ``python -m bench.console [--repeat N] [--top N]``.

Builds a scratch PostgreSQL database (``<DATABASE_URL's name>_bench_console``, dropped and
re-created), migrates it and fills it with ``seed_demo`` (about 1,000 members, their asset
snapshots, transactions and ledger, rewards, events, insights). It then requests, through
Django's test client in this process (so the time is the server's: view, queries, template),
signed in as a superuser:

- the console's home (the dashboard), for the superuser and for each staff role,
- every registered model's list, its add page where there is one, and the page of its most
  recent record (for members: the member with the most ledger entries, and their customer
  view; for events: the event with the most invitations),

each ``--repeat`` times (default 3; the fastest counts, after one warm-up request), next to two
baselines measured in the same run: ``GET /healthz`` (a view with one query) and the sign-in
page (a template without the console's navigation). It prints the ``--top`` slowest pages
(default 15) with their query counts, how many pages are over the target of one second, the
slowest page's ratio to the sign-in page, and the peak memory. Dropped at the end unless
``--keep``.
"""

import argparse
import os
import sys
import time
from typing import Any

from bench import django_on, peak_memory
from bench.tiers import DEFAULT_URL, _recreate, _scratch_url

TARGET_SECONDS = 1.0


def _timed(client, path: str, repeat: int) -> tuple[float, int, int]:
    """The fastest of ``repeat`` GETs of ``path`` (after a warm-up): seconds, queries, status."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)
    best = float("inf")
    queries = status = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
        if elapsed < best:
            best, queries, status = elapsed, len(captured), response.status_code
    return best, queries, status


def _pages() -> list[str]:
    """Every console page the browser tests visit, and more: each model's list, add page and
    latest record's page."""
    from django.contrib import admin
    from django.db.models import Count

    from events.models import Event
    from members.models import Member

    pages = ["/admin/"]
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        pages.append(base)
        if model_admin.has_add_permission(_superuser_request()):
            pages.append(f"{base}add/")
        latest: Any
        if model is Member:
            busiest = (
                Member.objects.annotate(entries=Count("points_entries"))
                .order_by("-entries")
                .values_list("pk", "customer_no")
                .first()
            )
            latest = busiest[0] if busiest else None
            if busiest:
                pages.append(f"{base}customer/{busiest[1]}/")  # the customer view
        elif model is Event:  # the event with the most invitations (its page lists them)
            latest = (
                Event.objects.annotate(invited=Count("invitations"))
                .order_by("-invited")
                .values_list("pk", flat=True)
                .first()
            )
        else:
            latest = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
        if latest is not None:
            pages.append(f"{base}{latest}/change/")
    return pages


def _superuser_request():
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="bench-root")
    return request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    scratch_url, maintenance_url, name = _scratch_url(
        os.environ.get("DATABASE_URL", DEFAULT_URL), suffix="_bench_console"
    )
    _recreate(maintenance_url, name)
    django_on(scratch_url)
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        call_command("seed_demo", verbosity=0)
        print(f"demo data: {time.perf_counter() - started:.1f} s", flush=True)
        settings.DEBUG = False  # as in production: no query log, cached templates
        root = User.objects.create_superuser("bench-root", password="bench-root-password-1")

        anonymous = Client()
        health, _, _ = _timed(anonymous, "/healthz", args.repeat)
        sign_in, _, _ = _timed(anonymous, "/admin/login/", args.repeat)
        print(
            f"baseline: GET /healthz {health * 1000:.1f} ms, sign-in page {sign_in * 1000:.1f} ms"
        )

        client = Client()
        client.force_login(root)
        results = []
        for path in _pages():
            seconds, queries, status = _timed(client, path, args.repeat)
            results.append((seconds, queries, status, path, "superuser"))
        for user in User.objects.filter(is_superuser=False, is_staff=True).order_by("username"):
            staff = Client()
            staff.force_login(user)
            seconds, queries, status = _timed(staff, "/admin/", args.repeat)
            results.append((seconds, queries, status, "/admin/", user.username))

        results.sort(reverse=True)
        print(f"{len(results)} pages, slowest {args.top}:")
        for seconds, queries, status, path, who in results[: args.top]:
            print(f"  {seconds * 1000:8.1f} ms {queries:4d} queries  {status}  {path}  ({who})")
        errors = [result for result in results if result[2] >= 400]
        over = [result for result in results if result[0] >= TARGET_SECONDS]
        slowest = results[0][0]
        print(
            f"over {TARGET_SECONDS:.0f} s: {len(over)}; answered with an error: {len(errors)}; "
            f"slowest {slowest * 1000:.0f} ms = {slowest / sign_in:.1f}x the sign-in page, "
            f"median {results[len(results) // 2][0] * 1000:.0f} ms"
        )
        for _seconds, _queries, status, path, who in errors:
            print(f"  error {status}: {path} ({who})")
        print(peak_memory())
    finally:
        connections.close_all()
        if not args.keep:
            _recreate(maintenance_url, name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
