"""The npukit version, and a fingerprint of the code that computes results.

A design point's cache key includes `build_id()`: the release version plus a hash of the
package's own source files, so results computed by different code never share a key, even
between two commits of one release.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from . import __version__


@functools.lru_cache(maxsize=1)
def build_id() -> str:
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"
