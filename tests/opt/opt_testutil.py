"""Reuse the ONNX model builders of tests/frontend for the optimiser tests."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "frontend"))

from onnx_testutil import (check_against_onnxruntime, model_bytes, node, onnxruntime_outputs,  # noqa: E402,F401
                           ops, random_feeds)
