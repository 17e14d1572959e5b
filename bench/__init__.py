"""Benchmarks that print figures (and ratios against a baseline measured in the same run).

They are not tests: nothing here passes or fails on a number. Run all with ``make bench`` or
one with ``python -m bench.<name>``.
"""

import resource
import sys


def peak_memory() -> str:
    """The peak resident memory of this process and of the largest finished child process
    (workers and servers the benchmark started and stopped), in MiB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20
    return f"peak memory: this process {own:,.0f} MiB, largest child process {children:,.0f} MiB"
