"""The consumer's rate with and without a dropped connection:
``python -m bench.consumer_faults [--batch N] [--rounds N]``.

Builds a scratch PostgreSQL database (``<DATABASE_URL's name>_bench_faults``, dropped and
re-created), with members and a card earning rule, then, in the same process and on the same
data, times consumer batches of ``--batch`` inbox rows:

1. the baseline: a batch with nothing going wrong;
2. a faulted batch: a second connection terminates the consumer's connection (by its
   ``application_name``) once, while the batch runs; the consumer retries the batch whole on a
   fresh connection (after its backoff);

then the same for a consumer task's run of ``--run-batches`` batches (20, as
``POINTS_CONSUMER_MAX_BATCHES``) with one drop in its first batch: the rate the consumer keeps
after a dropped connection. Each runs ``--rounds`` times; it prints the median rows per second
of each and their ratio (target: the run with a drop within 2x of the baseline), checks that
every row was credited exactly once and that the accounts reconcile, and prints peak memory. The
scratch
database is dropped at the end unless ``--keep``.
"""

import argparse
import os
import statistics
import sys
import threading
import time

from bench import django_on, peak_memory
from bench.tiers import _recreate, _scratch_url

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/loyalty"
CONSUMER_NAME = "bench-consumer"


def _terminate_after(url: str, delay: float, killed: list[int]) -> threading.Thread:
    """A thread that, ``delay`` seconds from now, terminates the consumer's connection."""
    import psycopg

    def run() -> None:
        time.sleep(delay)
        with psycopg.connect(url, autocommit=True) as killer:
            rows = killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                [CONSUMER_NAME],
            ).fetchall()
            killed.append(sum(1 for (done,) in rows if done))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--run-batches", type=int, default=20)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    scratch_url, maintenance_url, name = _scratch_url(
        os.environ.get("DATABASE_URL", DEFAULT_URL), suffix="_bench_faults"
    )
    _recreate(maintenance_url, name)
    django_on(scratch_url)
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from members.models import Member
    from points.models import EarningRule, Entry, Transaction
    from points.services import ingest
    from points.services.consumer import transactions_process_batch
    from points.services.reconciliation import points_reconcile

    try:
        call_command("migrate", verbosity=0)
        members = Member.objects.bulk_create(
            Member(customer_no=f"F{i:07d}", name=f"Member {i}") for i in range(args.members)
        )
        EarningRule.objects.create(
            code="card",
            name_en="Card",
            name_zh_hans="刷卡",
            transaction_type="card_spend",
            amount_unit=Decimal("20"),
            points_per_unit=1,
        )
        # The bench runs each batch itself: storing wakes nobody.
        ingest.consumer_enqueue = lambda **kwargs: None  # type: ignore[assignment]
        # The consumer's connection carries a name the terminator can find.
        connection.close()
        connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = CONSUMER_NAME
        kill_url = scratch_url

        counter = iter(range(10**9))

        def store(count: int) -> None:
            now = timezone.now()
            ingest.transactions_store(
                transactions=[
                    {
                        "source": "core",
                        "external_id": f"B{next(counter)}",
                        "member_id": members[i % len(members)].pk,
                        "type": "card_spend",
                        "amount": Decimal("100.00"),
                        "currency": "CNY",
                        "occurred_at": now,
                        "channel": "pos",
                        "merchant_category": "5411",
                        "reverses": "",
                    }
                    for i in range(count)
                ],
                via="task",
            )

        def timed(*, fault: bool, batches: int = 1) -> float:
            total = args.batch * batches
            store(total)
            killed: list[int] = []
            thread = None
            if fault:
                # Killed a little into the batch, while it holds its claimed rows.
                thread = _terminate_after(kill_url, baseline_seconds * 0.4, killed)
            started = time.perf_counter()
            processed = 0
            while processed < total:
                processed += transactions_process_batch(limit=args.batch)
            seconds = time.perf_counter() - started
            if thread is not None:
                thread.join()
                if not killed or not killed[0]:
                    print("  (the terminator found no consumer connection this round)")
            return total / seconds

        baseline_seconds = 0.1
        timed(fault=False)  # warm-up
        normal, faulted = [], []
        for _ in range(args.rounds):
            rate = timed(fault=False)
            normal.append(rate)
            baseline_seconds = args.batch / rate
            faulted.append(timed(fault=True))
        base, fault = statistics.median(normal), statistics.median(faulted)
        print(f"one batch of {args.batch:,} rows, {args.rounds} rounds each")
        print(f"  baseline:                {base:>9,.0f} rows/s (median)")
        print(f"  one dropped connection:  {fault:>9,.0f} rows/s (median)")
        print(f"  ratio baseline/faulted:  {base / fault:>9.2f}x")
        # A consumer task's run (POINTS_CONSUMER_MAX_BATCHES batches) with one drop in it.
        run = args.run_batches
        normal_run = [timed(fault=False, batches=run) for _ in range(args.rounds)]
        faulted_run = [timed(fault=True, batches=run) for _ in range(args.rounds)]
        base_run, fault_run = statistics.median(normal_run), statistics.median(faulted_run)
        print(f"a run of {run} batches ({run * args.batch:,} rows), one drop in its first batch")
        print(f"  baseline:                {base_run:>9,.0f} rows/s (median)")
        print(f"  one dropped connection:  {fault_run:>9,.0f} rows/s (median)")
        print(f"  ratio baseline/faulted:  {base_run / fault_run:>9.2f}x (target: within 2x)")
        credited = Entry.objects.filter(kind="earn").values("transaction_id").distinct().count()
        rows = Transaction.objects.count()
        pending = Transaction.objects.exclude(status="processed").count()
        print(f"rows: {rows:,}, credited once each: {credited == rows}, not processed: {pending}")
        discrepancies = points_reconcile()[1]
        print(f"reconciliation: {'clean' if not discrepancies else discrepancies[:3]}")
        print(peak_memory())
    finally:
        connection.close()
        if not args.keep:
            _recreate(maintenance_url, name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
