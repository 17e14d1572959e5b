"""Redemptions under concurrent load: ``python -m bench.redeem [--seconds N] [--clients N]``.

Builds a scratch PostgreSQL database on the ``DATABASE_URL`` server (``bench_redeem_<that URL's
database name>``, dropped and re-created, migrated), with ``--clients`` members (each funded
with points through the ledger, each with a member token), one hot reward and ``--rewards``
others, every one with a stock (and, for coupons, a code pool) that never runs out. It serves
the checkout with gunicorn (tasks in-process, no Redis) and, from ``--clients`` threads, one per
member, each with its own keep-alive HTTP connection, for ``--seconds`` each:

1. the baseline: a bare authenticated ``GET /api/v1/me/``;
2. hot: every client redeeming the same reward (``POST /api/v1/me/redemptions/``, quantity 1,
   a fresh ``Idempotency-Key`` each);
3. spread: the same, each request for one of the ``--rewards`` rewards drawn at random.

It prints each way's requests per second, p50 and p99 latency and errors by status, the ratios
redemption p99 / baseline p99 (target: within 3x) and hot / spread throughput (target: at least
0.5), then proves that stock, codes and the ledger agree (each reward's stock decrease is its
redemptions' quantity, codes given are the code rewards' redemptions, the redeem entries sum to
the points spent, and the points reconciliations find nothing), and prints peak memory.

Where a target is missed (or with ``--floors``) it measures what stops it, on the same server
and the same gunicorn setting: the p99 of a minimal authenticated DRF ``POST`` that commits one
``INSERT`` (the floor of any write), and, over ``--clients`` plain psycopg connections, one
row's ``UPDATE`` + ``COMMIT`` against one of ``--rewards`` rows (the floor of a hot row: its
lock is held through each commit). The scratch database is dropped at the end unless ``--keep``.

A smoke run: ``BENCH_REDEEM_SECONDS=3 BENCH_REDEEM_CLIENTS=10 python -m bench.redeem``.
"""

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import peak_memory
from bench.tiers import DEFAULT_URL, _recreate

ROOT = Path(__file__).resolve().parent.parent
POINTS_PRICE = 100
FLOOR_TABLE = "bench_floor_post"
FLOOR_ROWS_TABLE = "bench_floor_row"

# gunicorn on two cores: two processes (one per core: Python holds a core per process, the GIL)
# of four threads each (gthread: the clients' connections stay alive). A redemption is ~30 ms of
# Python and about as long again waiting on PostgreSQL (its statements, its locks, its commit),
# so each core needs more than one request in flight; more threads than that only queue inside
# the process for its GIL. Short runs of 2 x 4 gthread, 1 x 8 gthread, 4 x 2 gthread and 4 sync
# workers on the shared machine varied 2-4x from run to run for the same setting, more than they
# differed from each other (2 x 4 gave the best figures seen, at the quietest moment), so the
# setting rests on that reasoning; ``--web-workers`` and ``--web-threads`` (0: sync) change it.
WEB_WORKERS = 2
WEB_THREADS = 4


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _scratch(url: str) -> tuple[str, str, str]:
    """The scratch database's URL, the maintenance database's URL and the scratch name:
    ``bench_redeem_<name>`` on the server ``url`` names."""
    parts = urlsplit(url)
    name = "bench_redeem_" + (parts.path.lstrip("/") or "loyalty")
    return (
        urlunsplit(parts._replace(path=f"/{name}")),
        urlunsplit(parts._replace(path="/postgres")),
        name,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving ``app`` from this checkout on a free port of 127.0.0.1."""

    def __init__(self, *, app: str, env: dict[str, str], workers: int, threads: int) -> None:
        self.port = _free_port()
        handle, log_name = tempfile.mkstemp(prefix="bench-redeem-", suffix=".log")
        os.close(handle)
        self.log = Path(log_name)
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            app,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
            "--keep-alive",
            "30",
        ]
        if threads > 0:
            command += ["--worker-class", "gthread", "--threads", str(threads)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status in (200, 404):
                    return
            except OSError:
                time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.unlink(missing_ok=True)


@dataclass
class Way:
    """What one way of calling measured."""

    label: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    ok_status: int = 200

    @property
    def ok(self) -> int:
        return self.statuses[self.ok_status]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        """The ``q``-th percentile latency in milliseconds (every answer, errors included)."""
        if len(self.latencies) < 2:
            return (self.latencies or [0.0])[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    def line(self) -> str:
        bad = {status: count for status, count in self.statuses.items() if status != self.ok_status}
        detail = ", ".join(f"{status}: {count}" for status, count in sorted(bad.items()))
        if self.errors:
            detail += " (" + ", ".join(f"{c} x{n}" for c, n in self.errors.most_common(4)) + ")"
        return (
            f"  {self.label:<34} {self.rate:>8,.1f}/s   p50 {self.percentile(50):>7.1f} ms   "
            f"p99 {self.percentile(99):>7.1f} ms   errors: {detail or 'none'}"
        )


Request = tuple[str, str, bytes | None, dict[str, str]]


def _load(
    *,
    port: int,
    tokens: list[str],
    seconds: float,
    request: Any,
    way: Way,
) -> Way:
    """``len(tokens)`` threads, each with its own keep-alive connection, sending
    ``request(client, n, token)`` one after another for ``seconds``."""
    lock = threading.Lock()
    start = threading.Barrier(len(tokens) + 1)
    stop_at = [0.0]

    def client(index: int, token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        rng = random.Random(index)
        latencies: list[float] = []
        statuses: Counter = Counter()
        errors: Counter = Counter()
        start.wait()
        n = 0
        while time.perf_counter() < stop_at[0]:
            method, path, body, headers = request(index, n, token, rng)
            n += 1
            began = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                status, payload = 0, type(error).__name__.encode()
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
            if status != way.ok_status:
                try:
                    errors[json.loads(payload).get("code", status)] += 1
                except (ValueError, AttributeError):
                    errors[payload[:40].decode(errors="replace")] += 1
        conn.close()
        with lock:
            way.latencies.extend(latencies)
            way.statuses.update(statuses)
            way.errors.update(errors)

    threads = [
        threading.Thread(target=client, args=(index, token)) for index, token in enumerate(tokens)
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    way.seconds = time.perf_counter() - began
    return way


def _me(index: int, n: int, token: str, rng: random.Random) -> Request:
    return "GET", "/api/v1/me/", None, {"Authorization": f"Bearer {token}"}


def _redeem(reward_ids: list[str], path: str = "/api/v1/me/redemptions/"):
    def request(index: int, n: int, token: str, rng: random.Random) -> Request:
        reward_id = reward_ids[0] if len(reward_ids) == 1 else rng.choice(reward_ids)
        body = json.dumps({"reward_id": reward_id, "quantity": 1}).encode()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        return "POST", path, body, headers

    return request


# The write floor: a DRF view as thin as one can be (the service's JWT authentication, the
# member permission, the same middleware) that commits one INSERT of a row with a unique key.
# gunicorn serves it from here (``bench.redeem:floor_app``), with the same settings and setting.
_floor_handler: Any = None


def _floor_handler_build() -> Any:
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, transaction
    from django.urls import path
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from loyalty.api.permissions import IsMember

    class FloorApi(APIView):
        permission_classes = [IsMember]

        def post(self, request):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {FLOOR_TABLE} (member_id, key, body) "  # noqa: S608
                    "VALUES (%s, %s, %s) RETURNING id",
                    [
                        request.user.member.pk,
                        request.headers.get("Idempotency-Key", ""),
                        json.dumps(request.data),
                    ],
                )
                row_id = cursor.fetchone()[0]
            return Response({"id": row_id}, status=201)

    class FloorUrls:
        urlpatterns = [path("floor/", FloorApi.as_view())]

    settings.ROOT_URLCONF = FloorUrls  # type: ignore[misc]  # a module-like object will do
    return WSGIHandler()


def floor_app(environ: dict, start_response: Any) -> Any:
    global _floor_handler
    if _floor_handler is None:
        _floor_handler = _floor_handler_build()
    return _floor_handler(environ, start_response)


def _sql_load(*, label: str, url: str, clients: int, seconds: float, run: Any) -> Way:
    """``clients`` psycopg connections (autocommit), each calling ``run(conn, rng)`` one
    after another for ``seconds``: SQL alone, no HTTP and no Python web stack."""
    import psycopg

    way = Way(label, ok_status=1)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        rng = random.Random(index)
        latencies = []
        with psycopg.connect(url, autocommit=True) as conn:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                began = time.perf_counter()
                run(conn, rng)
                latencies.append(time.perf_counter() - began)
        with lock:
            way.latencies.extend(latencies)
            way.statuses[1] += len(latencies)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    way.seconds = time.perf_counter() - began
    return way


def _row_floor(*, url: str, clients: int, seconds: float, rows: int) -> Way:
    """One transaction after another, each committing an ``UPDATE`` of one of ``rows`` rows
    (``SET n = n + 1``): with one row, every transaction waits for the previous one's commit,
    the limit of a hot row whose lock is held to the commit."""

    def run(conn: Any, rng: random.Random) -> None:
        with conn.transaction():
            conn.execute(
                f"UPDATE {FLOOR_ROWS_TABLE} SET n = n + 1 WHERE id = %s",  # noqa: S608
                [rng.randint(1, rows)],
            )

    label = f"UPDATE 1 of {rows} row(s) + COMMIT"
    return _sql_load(label=label, url=url, clients=clients, seconds=seconds, run=run)


def _eligibility_floor(*, url: str, clients: int, seconds: float, query: Any) -> Way:
    """The eligibility statement a redemption runs first (``rewards_for_member`` for its
    reward), alone: what it costs the server per redemption, with no lock and no write."""
    sql, params = query

    def run(conn: Any, rng: random.Random) -> None:
        conn.execute(sql, params).fetchall()

    label = "eligibility SELECT alone"
    return _sql_load(label=label, url=url, clients=clients, seconds=seconds, run=run)


def _statement(sql: str) -> str:
    """``SELECT members_message``: a statement's verb and first table, for the record."""
    words = sql.replace('"', "").split()
    for before in ("FROM", "INTO", "UPDATE"):
        if before in words[:-1]:
            return f"{words[0]} {words[words.index(before) + 1]}"
    return words[0]


def _setup(args: argparse.Namespace) -> dict[str, Any]:
    """Members (funded, with tokens), rewards and code pools; one redemption in-process, its
    queries counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from members.authentication import member_token_issue
    from members.models import Member
    from points.services.ledger import points_credit
    from rewards.models import Category, Reward
    from rewards.selectors import rewards_for_member
    from rewards.services.redemptions import redemption_create

    category = Category.COUPON if args.category == "coupon" else Category.GIFT
    members = Member.objects.bulk_create(
        Member(customer_no=f"R{i:07d}", name=f"Member {i}") for i in range(args.clients)
    )
    # Enough points for a redemption every millisecond of both ways: never the refusal.
    funds = POINTS_PRICE * int(2 * args.seconds * 1000 + 100)
    for member in members:
        points_credit(member=member, points=funds, idempotency_key=f"bench-fund:{member.pk}")
    stock = args.stock

    def reward(code: str, position: int) -> Reward:
        return Reward(
            code=code,
            category=category,
            name_en=f"Reward {code}",
            name_zh_hans=f"礼品 {code}",
            points_price=POINTS_PRICE,
            stock=stock,
            position=position,
        )

    hot, warm, *spread = Reward.objects.bulk_create(
        [reward("hot", 0), reward("warm-up", 1)]
        + [reward(f"spread-{i:02d}", 2 + i) for i in range(args.rewards)]
    )
    with connection.cursor() as cursor:
        if category == Category.COUPON:
            # Every reward the same pool, so hot and spread differ in contention only.
            cursor.execute(
                "INSERT INTO rewards_couponcode (reward_id, code, created_at) "
                "SELECT r.id, r.code || '-' || lpad(i::text, 8, '0'), now() "
                "FROM rewards_reward r CROSS JOIN generate_series(1, %s) AS i ORDER BY r.id, i",
                [stock],
            )
        cursor.execute(
            f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, member_id bigint NOT NULL, "
            "key text NOT NULL UNIQUE, body text NOT NULL, created_at timestamptz NOT NULL "
            "DEFAULT now())"
        )
        cursor.execute(f"CREATE TABLE {FLOOR_ROWS_TABLE} (id int PRIMARY KEY, n bigint NOT NULL)")
        cursor.execute(
            f"INSERT INTO {FLOOR_ROWS_TABLE} SELECT i, 0 FROM generate_series(1, %s) AS i",  # noqa: S608
            [args.rewards],
        )
        cursor.execute("VACUUM ANALYZE")
    # One redemption through the service in this process: its statements, for the record.
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        redemption_create(member=members[0], reward_id=warm.pk)
        alone = time.perf_counter() - started
    statements = [query["sql"] for query in captured.captured_queries]
    stock_at = next(
        (i for i, sql in enumerate(statements) if sql.startswith('UPDATE "rewards_reward"')),
        len(statements),
    )
    eligibility = rewards_for_member(member=members[0]).filter(pk=hot.pk).query.sql_with_params()
    connection.close()
    return {
        "eligibility": eligibility,
        "members": members,
        "tokens": [str(member_token_issue(member=m).access_token) for m in members],
        "hot": str(hot.pk),
        "warm": str(warm.pk),
        "spread": [str(r.pk) for r in spread],
        "stock": stock,
        "statements": len(statements),
        "after_stock": statements[stock_at + 1 :],
        "alone_ms": alone * 1000,
    }


def _agreement(*, stock: int, created: int) -> list[tuple[str, bool, str]]:
    """The checks that stock, codes and the ledger agree after the run."""
    from django.db.models import Count, Q, Sum

    from points.models import Entry
    from points.services.reconciliation import consumptions_reconcile, points_reconcile
    from rewards.models import CODE_CATEGORIES, CouponCode, Redemption, Reward

    live = ~Q(redemptions__status=Redemption.Status.CANCELLED)
    rewards = Reward.objects.annotate(
        taken=Sum("redemptions__quantity", filter=live, default=0)
    ).order_by("position")
    stock_wrong = [r.code for r in rewards if stock - (r.stock or 0) != r.taken]
    codes_by_reward = dict(
        CouponCode.objects.filter(redemption__isnull=False)
        .values_list("reward_id")
        .annotate(n=Count("id"))
    )
    code_rewards = [r for r in rewards if r.category in CODE_CATEGORIES]
    codes_wrong = [r.code for r in code_rewards if codes_by_reward.get(r.pk, 0) != r.taken]
    codes_given = sum(codes_by_reward.values())
    code_redeemed = sum(r.taken for r in code_rewards)
    on_cancelled = CouponCode.objects.filter(redemption__status=Redemption.Status.CANCELLED).count()
    redeemed = -(Entry.objects.filter(kind=Entry.Kind.REDEEM).aggregate(s=Sum("points"))["s"] or 0)
    spent = Redemption.objects.aggregate(s=Sum("points_spent"))["s"] or 0
    rows = Redemption.objects.count()
    accounts, points_wrong = points_reconcile()
    debits, consumptions_wrong = consumptions_reconcile()
    total_taken = sum(r.taken for r in rewards)
    return [
        (
            f"stock decrease == non-cancelled quantity, each of {len(rewards)} rewards",
            not stock_wrong,
            f"{total_taken:,} taken" + (f"; wrong: {stock_wrong[:5]}" if stock_wrong else ""),
        ),
        (
            "codes given == redemptions of code rewards",
            not codes_wrong and codes_given == code_redeemed and not on_cancelled,
            f"{codes_given:,} codes, {code_redeemed:,} redeemed"
            + (f"; wrong: {codes_wrong[:5]}" if codes_wrong else ""),
        ),
        (
            "sum of redeem entries == sum of points_spent",
            redeemed == spent,
            f"{redeemed:,} == {spent:,}",
        ),
        (
            "201 answers (+1 in-process) == redemption rows",
            created + 1 == rows,
            f"{created:,} + 1, {rows:,} rows",
        ),
        (
            f"points_reconcile() over {accounts:,} accounts",
            not points_wrong,
            "nothing found" if not points_wrong else points_wrong[0].describe(),
        ),
        (
            f"consumptions_reconcile() over {debits:,} debits",
            not consumptions_wrong,
            "nothing found" if not consumptions_wrong else consumptions_wrong[0].describe(),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=_env_int("BENCH_REDEEM_SECONDS", 20))
    parser.add_argument("--clients", type=int, default=_env_int("BENCH_REDEEM_CLIENTS", 50))
    parser.add_argument("--rewards", type=int, default=_env_int("BENCH_REDEEM_REWARDS", 50))
    parser.add_argument(
        "--stock",
        type=int,
        default=_env_int("BENCH_REDEEM_STOCK", 5_000),
        help="each reward's stock (and, for coupons, its code pool)",
    )
    parser.add_argument("--category", choices=["coupon", "gift"], default="coupon")
    parser.add_argument("--web-workers", type=int, default=WEB_WORKERS)
    parser.add_argument(
        "--web-threads", type=int, default=WEB_THREADS, help="gthread threads; 0: sync workers"
    )
    parser.add_argument("--floors", action="store_true", help="measure the floors even if met")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    scratch_url, maintenance_url, name = _scratch(os.environ.get("DATABASE_URL", DEFAULT_URL))
    _recreate(maintenance_url, name)
    # The service's development settings without Redis: Celery tasks run in-process (eager), the
    # cache is per process; the server and this process share the key that signs member tokens.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.default",
        "DATABASE_URL": scratch_url,
        "REDIS_URL": "",
        "DEBUG": "1",  # DEBUG=0 requires REDIS_URL; DEBUG also keeps each request's query log
        "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "JWT_ACCESS_MINUTES": "120",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    server: Server | None = None
    try:
        call_command("migrate", verbosity=0)
        data = _setup(args)
        clients, seconds = args.clients, args.seconds
        setting = (
            f"{args.web_workers} x gthread {args.web_threads} threads"
            if args.web_threads > 0
            else f"{args.web_workers} sync workers"
        )
        print(
            f"scratch database {name}: {clients} members, 1 hot + {args.rewards} rewards "
            f"({args.category}, stock {data['stock']:,} each); gunicorn {setting}; "
            f"{clients} clients, {seconds:g} s each way",
            flush=True,
        )
        print(
            f"  one redemption in-process: {data['statements']} statements, "
            f"{data['alone_ms']:.1f} ms; after the stock UPDATE (under the reward's row lock, "
            f"to the commit): {len(data['after_stock'])}: "
            + ", ".join(_statement(sql) for sql in data["after_stock"]),
            flush=True,
        )
        load_before = os.getloadavg()[0]
        server = Server(
            app="config.wsgi:application",
            env=env,
            workers=args.web_workers,
            threads=args.web_threads,
        )
        tokens = data["tokens"]
        # Warm-up, not counted: every worker has loaded, connected and served both operations.
        _load(port=server.port, tokens=tokens, seconds=1, request=_me, way=Way("warm-up"))
        warm = _load(
            port=server.port,
            tokens=tokens,
            seconds=1,
            request=_redeem([data["warm"]]),
            way=Way("warm-up", ok_status=201),
        )
        baseline = _load(
            port=server.port,
            tokens=tokens,
            seconds=seconds,
            request=_me,
            way=Way("baseline GET /me/"),
        )
        print(baseline.line(), flush=True)
        hot = _load(
            port=server.port,
            tokens=tokens,
            seconds=seconds,
            request=_redeem([data["hot"]]),
            way=Way("hot: 1 reward", ok_status=201),
        )
        print(hot.line(), flush=True)
        spread = _load(
            port=server.port,
            tokens=tokens,
            seconds=seconds,
            request=_redeem(data["spread"]),
            way=Way(f"spread: {args.rewards} rewards", ok_status=201),
        )
        print(spread.line(), flush=True)
        load_after = os.getloadavg()[0]
        server.stop()
        server = None

        p99_hot = hot.percentile(99) / baseline.percentile(99)
        p99_spread = spread.percentile(99) / baseline.percentile(99)
        throughput = hot.rate / spread.rate if spread.rate else 0.0
        print("ratios")
        print(f"  hot p99 / baseline p99          {p99_hot:6.2f} x (target <= 3)")
        print(f"  spread p99 / baseline p99       {p99_spread:6.2f} x (target <= 3)")
        print(f"  hot / spread redemptions/s      {throughput:6.2f} x (target >= 0.5)")

        if args.floors or max(p99_hot, p99_spread) > 3:
            print("floor: a minimal authenticated DRF POST committing one INSERT", flush=True)
            server = Server(
                app="bench.redeem:floor_app",
                env=env,
                workers=args.web_workers,
                threads=args.web_threads,
            )
            floor_request = _redeem([data["hot"]], path="/floor/")
            _load(
                port=server.port,
                tokens=tokens,
                seconds=1,
                request=floor_request,
                way=Way("warm-up", ok_status=201),
            )
            floor = _load(
                port=server.port,
                tokens=tokens,
                seconds=seconds,
                request=floor_request,
                way=Way("POST, one INSERT (floor)", ok_status=201),
            )
            server.stop()
            server = None
            print(floor.line())
            print(
                f"  floor p99 / baseline p99        "
                f"{floor.percentile(99) / baseline.percentile(99):6.2f} x;  redemption p99 / "
                f"floor p99: hot {hot.percentile(99) / floor.percentile(99):.2f} x, "
                f"spread {spread.percentile(99) / floor.percentile(99):.2f} x",
                flush=True,
            )
        if args.floors or throughput < 0.5:
            print("floor: one row UPDATE + COMMIT per transaction, psycopg, no HTTP", flush=True)
            one = _row_floor(url=scratch_url, clients=clients, seconds=seconds, rows=1)
            print(one.line())
            many = _row_floor(url=scratch_url, clients=clients, seconds=seconds, rows=args.rewards)
            print(many.line())
            print(f"  one row / {args.rewards} rows            {one.rate / many.rate:6.2f} x")
        if args.floors or max(p99_hot, p99_spread) > 3 or throughput < 0.5:
            print("floor: a redemption's eligibility SELECT alone, psycopg, no HTTP", flush=True)
            query = data["eligibility"]
            alone = _eligibility_floor(
                url=scratch_url, clients=clients, seconds=seconds, query=query
            )
            print(alone.line())
            print(
                f"  its rate / spread redemptions/s {alone.rate / spread.rate:6.2f} x", flush=True
            )

        print("agreement after the run")
        created = warm.ok + hot.ok + spread.ok
        for label, ok, detail in _agreement(stock=data["stock"], created=created):
            print(f"  {'ok  ' if ok else 'FAIL'} {label}: {detail}")
        # The machine may be shared: its load says how much the figures above had to share it.
        print(f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}")
        print(peak_memory())
    finally:
        if server is not None:
            server.stop()
        connection.close()
        if not args.keep:
            _recreate(maintenance_url, name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
