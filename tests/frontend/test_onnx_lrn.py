"""ONNX LRN (AlexNet, GoogLeNet, ZFNet) on the NPU: a square, a 1x1 convolution by a banded
channel matrix, a power table and a product, against onnxruntime float."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit


# AlexNet's / GoogLeNet's parameters, then two far stronger normalisations: the int8 square
# and denominator then cost more (max difference within 15% of the output range)
@pytest.mark.parametrize(("size", "alpha", "beta", "bias", "tol"), [(5, 1e-4, 0.75, 1.0, 0.02),
                                                                     (5, 0.5, 0.6, 2.0, 0.15),
                                                                     (3, 2.0, 0.75, 1.0, 0.15)])
def test_lrn_on_the_npu_matches_onnxruntime(tmp_path, size: int, alpha: float, beta: float, bias: float,
                                            tol: float) -> None:
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((12, 3, 3, 3)).astype(np.float32) * 0.5, "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("LRN", ["r"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = tmp_path / "lrn.onnx"
    path.write_bytes(m.SerializeToString())
    xs = rng.standard_normal((8, 1, 3, 10, 10)).astype(np.float32)
    # minmax: "auto" would clip the ranges inside a model whose output is a dense map
    prog = npukit.compile(path, "npu-m", calibration={"x": xs}, method="minmax", sqnr=False)
    assert not prog.profile().host_ops
    sess = ort.InferenceSession(str(path))
    for k in range(2):
        want = sess.run(None, {"x": xs[k]})[0]
        got = prog.run({"x": xs[k]})["y"]
        cos = float(np.dot(got.ravel(), want.ravel()) / np.linalg.norm(got) / np.linalg.norm(want))
        assert cos > 0.995
        assert np.abs(got - want).max() <= tol * (want.max() - want.min())
