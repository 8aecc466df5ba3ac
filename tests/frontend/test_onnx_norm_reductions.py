"""ONNX ReduceSumSquare, ReduceL1 and ReduceL2 (tf2onnx writes a Keras layer norm's variance as
ReduceSumSquare; L2 norms of embeddings) are an element-wise table (x^2, |x|), a REDUCE_SUM
and for L2 the square root of the sum: the import equals onnxruntime, and on the NPU every
layer runs there within int8's error of a sum of squares."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import helper
from onnx_testutil import check_against_onnxruntime, model_bytes, onnxruntime_outputs

import npukit

SHAPE = (1, 3, 5, 8)
CASES = [(op, axes, keep) for op in ("ReduceSumSquare", "ReduceL1", "ReduceL2")
         for axes, keep in (((3,), 1), ((1, 2), 0), ((0, 2, 3), 0))]


def _model(op, axes, keep) -> bytes:
    return model_bytes([helper.make_node(op, ["x"], ["y"], axes=list(axes), keepdims=keep)], {"x": SHAPE}, ["y"])


@pytest.mark.parametrize("op,axes,keep", CASES, ids=[f"{o}-{a}-{k}" for o, a, k in CASES])
def test_import_matches_onnxruntime(op, axes, keep):
    check_against_onnxruntime(_model(op, axes, keep))


@pytest.mark.parametrize("op", ["ReduceSumSquare", "ReduceL1", "ReduceL2"])
def test_on_the_npu_close_to_onnxruntime(op, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(mb := _model(op, (3,), 1))
    rng = np.random.default_rng(7)
    calib = rng.normal(size=(12, *SHAPE)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert not prog.profile().host_ops
    for x in calib[:4]:
        want, got = onnxruntime_outputs(mb, {"x": x})["y"], prog.run({"x": x})["y"]
        # eight int8 squares summed: a few per cent of the largest value
        np.testing.assert_allclose(got, want, atol=0.04 * float(np.abs(want).max()))
