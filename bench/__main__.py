"""``python -m bench``: run every benchmark module in this package, one after the other.

Each benchmark's printed figures go to the terminal as they come and, at the end, to
``bench/results.json`` (per benchmark: its lines, its duration, whether it finished) and
``bench/results.md`` (a readable summary: the lines that carry a ratio or a target). ``python
-m bench kpis tiers`` runs only those.
"""

import contextlib
import datetime as dt
import importlib
import io
import json
import pkgutil
import re
import sys
import time
import traceback
from pathlib import Path

import bench

HERE = Path(bench.__file__).parent
# A summary line carries a ratio ("14.97x") or says what a target or floor is.
SUMMARY = re.compile(r"\d\.?\d*x\b|target|floor|peak memory|over \d")


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, terminal):
        self.terminal, self.kept = terminal, io.StringIO()

    def write(self, text: str) -> int:
        self.terminal.write(text)
        self.kept.write(text)
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()


def main(argv: list[str] | None = None) -> int:
    wanted = argv if argv is not None else sys.argv[1:]
    names = sorted(
        info.name for info in pkgutil.iter_modules([str(HERE)]) if not info.name.startswith("_")
    )
    names = [name for name in names if not wanted or name in wanted]
    results: dict[str, dict] = {}
    for name in names:
        print(f"\n=== bench.{name}", flush=True)
        tee = _Tee(sys.stdout)
        started = time.perf_counter()
        finished = True
        saved_argv, sys.argv = sys.argv, [f"bench.{name}"]  # each with its own defaults
        with contextlib.redirect_stdout(tee):
            try:
                module = importlib.import_module(f"bench.{name}")
                module.main()
            except Exception:  # one benchmark failing does not stop the others
                traceback.print_exc(file=tee)
                finished = False
            finally:
                sys.argv = saved_argv
        results[name] = {
            "seconds": round(time.perf_counter() - started, 1),
            "finished": finished,
            "lines": tee.kept.getvalue().splitlines(),
        }
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    (HERE / "results.json").write_text(
        json.dumps({"ran_at": stamp, "benchmarks": results}, indent=2, ensure_ascii=False) + "\n"
    )
    summary = [f"# Benchmark results ({stamp})", ""]
    for name, result in results.items():
        state = "" if result["finished"] else " (did not finish)"
        summary.append(f"## bench.{name}: {result['seconds']} s{state}")
        summary += [f"    {line.strip()}" for line in result["lines"] if SUMMARY.search(line)]
        summary.append("")
    (HERE / "results.md").write_text("\n".join(summary))
    print(f"\nWritten: {HERE / 'results.json'}, {HERE / 'results.md'}")
    return 0 if all(result["finished"] for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
