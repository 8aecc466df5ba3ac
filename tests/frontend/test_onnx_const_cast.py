"""Constant folding's numpy Cast (frontend.onnx_const: small integers to float, exact) gives
onnxruntime's values and dtype; other casts still go to onnx.reference."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from npukit.frontend import onnx_const

OPSETS = [helper.make_opsetid("", 17)]
CASES = [(np.int8, TensorProto.FLOAT), (np.uint8, TensorProto.DOUBLE), (np.int16, TensorProto.FLOAT),
         (np.uint16, TensorProto.FLOAT), (np.bool_, TensorProto.FLOAT), (np.int32, TensorProto.FLOAT)]


def _ort_cast(x: np.ndarray, to: int) -> np.ndarray:
    src = helper.np_dtype_to_tensor_dtype(x.dtype)
    g = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=to)], "cast",
                          [helper.make_tensor_value_info("x", src, list(x.shape))],
                          [helper.make_tensor_value_info("y", to, list(x.shape))])
    model = helper.make_model(g, opset_imports=OPSETS)
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("dtype,to", CASES)
def test_cast_folds_as_onnxruntime_casts(dtype, to):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    x = rng.integers(0, 2, (5, 7)).astype(dtype) if info is None else \
        rng.integers(info.min, info.max, (5, 7), endpoint=True).astype(dtype)
    if info is not None and x.size > 2:
        x.flat[:2] = [info.min, info.max]
    node = helper.make_node("Cast", ["x"], ["y"], to=to)
    fast = onnx_const._fast(node, [x])
    got = onnx_const.evaluate(node, [x], OPSETS)[0]
    want = _ort_cast(x, to)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    # small integers take the numpy path; int32 (not every value is a float32) does not
    assert (fast is not None) == (np.dtype(dtype).itemsize <= 2)
