"""A 16x8 TFLite model (QUANTIZE int8 -> int16, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
QUANTIZE int16 -> int8) compiled by npukit runs wholly on the NPU and equals LiteRT's
reference interpreter bit for bit; the refusal of other int16 operators names them."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

import npukit
from npukit.errors import UnsupportedOpError
from npukit.frontend.tflite import load_tflite
from npukit.testing.models_16x8 import chain_16x8
from npukit.testing.tflite_builder import Operator, TensorSpec, build_model, run_reference


@pytest.mark.parametrize("arch", ["npu-m", "npu-s"])
def test_16x8_model_runs_on_the_npu_bit_exact(tmp_path, arch):
    path = tmp_path / "m16x8.tflite"
    model = chain_16x8()
    path.write_bytes(model)
    cm = npukit.compile(path, arch=arch, host="never")
    assert cm.profile().host_ops == []
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, (1, 6, 6, 3)).astype(np.int8)
        want = run_reference(model, [x])[0]
        got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
        np.testing.assert_array_equal(got, want)
        assert len(np.unique(want)) > 2          # not saturated to a constant


def test_other_int16_operators_are_refused_naming_the_operator(tmp_path):
    x = TensorSpec("x", (1, 8), "int16", 0.001, 0)
    y = TensorSpec("y", (1, 8), "int16", 0.001, 0)
    path = tmp_path / "l2.tflite"
    path.write_bytes(build_model([Operator("L2_NORMALIZATION", (x,), (y,), tfl.L2NormOptionsT())], [x], [y]))
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(L2_NORMALIZATION\).*int16"):
        load_tflite(path)
