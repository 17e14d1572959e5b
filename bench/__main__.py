"""``python -m bench``: run every benchmark module in this package, one after the other."""

import importlib
import pkgutil
import sys
from pathlib import Path

import bench


def main() -> int:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(bench.__file__).parent)])
        if not info.name.startswith("_")
    )
    if not names:
        print("No benchmarks yet.")
        return 0
    for name in names:
        print(f"\n=== bench.{name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
