"""Small real models for the explorer's tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from npukit.models import zoo


@pytest.fixture(scope="session")
def ds_cnn_path(tmp_path_factory) -> Path:
    return zoo.save(zoo.ds_cnn(), tmp_path_factory.mktemp("models") / "ds_cnn.onnx")
