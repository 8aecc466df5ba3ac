"""HOST_FLOAT: an ONNX GRU the NPU does not cover (clipped; the default GRU is an integer cell on
the NPU) runs in float on the host beside NPU layers (oracle: onnxruntime)."""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import npukit


def _gru_model(relu_after: bool) -> bytes:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((1, 12, 8)).astype(np.float32) * 0.5, "W")
    r = numpy_helper.from_array(rng.standard_normal((1, 12, 4)).astype(np.float32) * 0.5, "R")
    nodes = [helper.make_node("GRU", ["x", "W", "R"], ["", "h"], hidden_size=4, clip=1.5)]
    out = "h"
    if relu_after:
        nodes.append(helper.make_node("Relu", ["h"], ["y"]))
        out = "y"
    graph = helper.make_graph(nodes, "gru", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 1, 4])], [w, r])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model.SerializeToString()


def _check(tmp_path, relu_after: bool, atol: float):
    path = tmp_path / "gru.onnx"
    path.write_bytes(_gru_model(relu_after))
    x = np.random.default_rng(1).standard_normal((16, 1, 1, 8)).astype(np.float32)
    prog = npukit.compile(path, "npu-s", {"x": (1, 1, 8)}, {"x": x})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    targets = {layer.op: layer.target for layer in prog.program.layers}
    assert targets["host_float"] == "host"
    for xi in x[:4]:
        want = session.run(None, {"x": xi})[0]
        got = prog.run({"x": xi})[prog.output_names[0]]
        np.testing.assert_allclose(got, want, atol=atol)
    return prog


def test_gru_alone_stays_float_end_to_end(tmp_path):
    prog = _check(tmp_path, relu_after=False, atol=1e-6)
    assert prog.program.inputs[0].dtype == "float32"       # no int8 boundary: nothing on the NPU


def test_gru_then_npu_relu_crosses_one_int8_boundary(tmp_path):
    prog = _check(tmp_path, relu_after=True, atol=2 / 255 + 1e-6)   # h in (-1, 1): one int8 step
    assert any(layer.target == "npu" for layer in prog.program.layers)
