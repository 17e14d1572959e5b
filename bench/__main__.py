"""``make bench``: every benchmark in turn (each prints its own figures)."""

from bench import ingest

if __name__ == "__main__":
    ingest.main()
