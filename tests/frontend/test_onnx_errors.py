"""User-facing errors of the ONNX importer: one clear line naming the problem."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_testutil import check_against_onnxruntime, model_bytes, node

from npukit.errors import ModelError, UnsupportedOpError
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op


def test_non_standard_domain_names_op_domain_and_node():
    mb = model_bytes([helper.make_node("Erf", ["x"], ["y"], name="gelu_erf", domain="com.microsoft")],
                     {"x": (1, 4)}, ["y"])
    with pytest.raises(UnsupportedOpError) as info:
        load_onnx(mb)
    assert str(info.value) == ("unsupported ONNX operator 'Erf' from domain 'com.microsoft' (node 'gelu_erf'): "
                               "only standard-domain and ai.onnx.ml operators can run on the host")
    assert info.value.node == "gelu_erf"


def test_malformed_bytes_and_missing_file(tmp_path):
    with pytest.raises(ModelError, match="cannot parse ONNX model") as info:
        load_onnx(b"\x08\x07garbage that is not a protobuf \xff\xff\xff")
    assert "\n" not in str(info.value)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"")
    with pytest.raises(ModelError, match="no graph"):
        load_onnx(str(bad))
    with pytest.raises(ModelError, match="does not exist"):
        load_onnx(tmp_path / "missing.onnx")


def dynamic_model() -> bytes:
    graph = helper.make_graph(
        [node("Relu", ["x"], ["r"]), node("Flatten", ["r"], ["y"])], "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def test_dynamic_dims_need_input_shape():
    with pytest.raises(ModelError, match="input 'x' has dynamic shape.*--input-shape x="):
        load_onnx(dynamic_model())
    g = check_against_onnxruntime(dynamic_model(), input_shapes={"x": (2, 3, 4, 5)})
    assert g.tensors["y"].shape == (2, 60)
    with pytest.raises(ModelError, match="input-shape names"):
        load_onnx(dynamic_model(), {"nope": (1,)})
    with pytest.raises(ModelError, match="has 3 dims, the model's input has 4"):
        load_onnx(dynamic_model(), {"x": (1, 3, 4)})


def test_dynamic_batch_alone_compiles_for_batch_one(tmp_path):
    """A symbolic leading dim with every other dim known: batch 1, said once; calibration may
    stack its samples along that batch axis."""
    import npukit
    from npukit.frontend.onnx import DynamicBatchWarning
    from onnx_testutil import onnxruntime_outputs

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    mb = model_bytes([node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                     {"x": ("N", 3, 6, 6)}, ["y"], {"w": w})
    with pytest.warns(DynamicBatchWarning, match="input 'x' has a dynamic batch dimension: compiled for batch 1"):
        g = load_onnx(mb)
    assert g.tensors["x"].shape == (1, 3, 6, 6)
    path = tmp_path / "dyn_batch.onnx"
    path.write_bytes(mb)
    calib = rng.normal(0, 1, (6, 3, 6, 6)).astype(np.float32)
    with pytest.warns(DynamicBatchWarning):
        stacked = npukit.compile(path, calibration={"x": calib}, sqnr=False)
    with pytest.warns(DynamicBatchWarning):
        per_sample = npukit.compile(path, calibration={"x": calib[:, None]}, sqnr=False)
    x = calib[:1]
    got = stacked.run({"x": x})["y"]
    assert np.array_equal(got, per_sample.run({"x": x})["y"])
    want = onnxruntime_outputs(mb, {"x": x})["y"]
    scale = float(np.abs(want).max()) / 127
    assert np.abs(got - want).max() <= 3 * scale


def test_weights_computed_from_input_run_on_the_host():
    mb = model_bytes([node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])],
                     {"x": (1, 3, 4, 4), "w": (2, 3, 1, 1)}, ["y"])
    g = check_against_onnxruntime(mb)
    host = [n for n in g.nodes if n.op is Op.HOST_FLOAT]
    assert len(host) == 1 and "must be a constant" in host[0].attrs.reason


def test_non_constant_if_condition_runs_on_the_host():
    branch = helper.make_graph([node("Identity", ["x"], ["o"])], "b", [],
                               [helper.make_tensor_value_info("o", 1, None)])
    nodes = [node("ReduceMax", ["x"], ["m"], keepdims=0), node("Greater", ["m", "zero"], ["c"]),
             node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)]
    mb = model_bytes(nodes, {"x": (1, 3)}, ["y"], {"zero": np.float32(0)})
    g = check_against_onnxruntime(mb)
    assert "data-dependent If" in [n.attrs.reason for n in g.nodes if n.op is Op.HOST_FLOAT]


def test_executor_rejects_wrong_feeds():
    from npukit.errors import InputError
    from npukit.kernels.float_exec import run_float
    g = load_onnx(model_bytes([node("Relu", ["x"], ["y"])], {"x": (1, 4)}, ["y"]))
    with pytest.raises(InputError, match="missing input 'x'"):
        run_float(g, {})
    with pytest.raises(InputError, match=r"shape \(2, 4\), the model expects \(1, 4\)"):
        run_float(g, {"x": np.zeros((2, 4))})


def test_node_missing_a_required_attribute_is_a_model_error():
    mb = model_bytes([helper.make_node("MaxPool", ["x"], ["y"], name="pool")], {"x": (1, 2, 4, 4)}, ["y"])
    with pytest.raises(ModelError, match="attribute 'kernel_shape' of ONNX node 'pool' \\(MaxPool\\) must be given"):
        load_onnx(mb)
