"""Helpers of the report tests: the bundled digits model and the command line as a user runs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"


def npukit_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "npukit.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)
