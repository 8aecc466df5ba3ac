"""TFLite DIV of a float model (basic-pitch's normalisation divides by a computed range) runs on
the NPU as the dividend times the divisor's reciprocal table, or times a constant divisor's
reciprocal: within int8's error of LiteRT float. An int8 DIV stays on the host."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.testing.tflite_builder import Operator, build_model, build_single_op, run_default
from npukit.testing.tflite_builder import TensorSpec as T

SHAPE = (1, 4, 6, 3)


def _model(constant: bool) -> bytes:
    x, y, out = T("x", SHAPE, "float32"), T("y", SHAPE, "float32"), T("out", SHAPE, "float32")
    if constant:
        d = T("d", (3,), "float32", data=np.asarray([0.5, 2.0, 4.0], np.float32))
        return build_model([Operator("DIV", (x, d), (out,), tfl.DivOptionsT())], [x], [out])
    return build_model([Operator("DIV", (x, y), (out,), tfl.DivOptionsT())], [x, y], [out])


@pytest.mark.parametrize("constant", [False, True], ids=["computed", "constant"])
def test_float_div_on_the_npu_close_to_litert(constant, tmp_path):
    path = tmp_path / "div.tflite"
    path.write_bytes(model := _model(constant))
    rng = np.random.default_rng(3)
    xs = rng.uniform(-1, 1, (10, *SHAPE)).astype(np.float32)
    ys = rng.uniform(0.5, 2.0, (10, *SHAPE)).astype(np.float32)          # a divisor away from 0
    calib = {"x": xs} if constant else {"x": xs, "y": ys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npu_compile(path, "npu-m", calibration=calib, sqnr=False)
    assert not prog.profile().host_ops
    for k in range(4):
        feeds = [xs[k]] if constant else [xs[k], ys[k]]
        want = run_default(model, feeds)[0]
        got = prog.run(dict(zip(prog.input_names, feeds)))[prog.output_names[0]]
        # |x / y| <= 2 (8 with the constant 0.5 ... 4 divisors: <= 2 too); a few int8 steps
        np.testing.assert_allclose(got, want, atol=0.05)


def test_int8_div_stays_on_the_host(tmp_path):
    x, y = T("x", SHAPE, scale=0.02, zero_point=0), T("y", SHAPE, scale=0.02, zero_point=-100)
    model = build_single_op("DIV", [x, y], [T("out", SHAPE, scale=0.05, zero_point=0)], tfl.DivOptionsT())
    path = tmp_path / "div8.tflite"
    path.write_bytes(model)
    host = npu_compile(path, "npu-m").profile().host_ops
    assert [h["reason"] for h in host] == ["no NPU kernel for TFLite DIV: DIV of int8 tensors"]
