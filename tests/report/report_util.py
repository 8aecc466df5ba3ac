"""Helpers of the report tests: the bundled digits model and the command line as a user runs it."""
from __future__ import annotations

from pathlib import Path

from npukit.testing.fixtures import run_cli

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"


npukit_cli = run_cli
