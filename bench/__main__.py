"""``python -m bench`` (``make bench``): every benchmark, one after the other."""

import sys

from bench import tiers

if __name__ == "__main__":
    sys.exit(tiers.main(sys.argv[1:]))
