"""scikit-learn pipelines exported by skl2onnx use `ai.onnx.ml` operators. The arithmetic
ones (Scaler, LinearRegressor) import as standard operators and run on the NPU, but for a
Scaler of the model input, which runs in float on the host so that features of different
ranges each keep their int8 resolution; the others (a tree ensemble) run on the host by
onnxruntime, reported; one whose output is no tensor (ZipMap's list of maps) is a one-line
error. Against onnxruntime on the same file."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import onnxruntime_outputs

import npukit
from npukit.errors import NpukitError

F = 4
OFFSET, SCALE = [5.36, 0.0, 12.8, 75.5], [0.355, 1.0, 0.147, 0.0232]     # a StandardScaler's


def _model(nodes, outputs, inits=None) -> bytes:
    graph = helper.make_graph(nodes, "skl", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, F])],
                              outputs, [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                             ir_version=8).SerializeToString()


def _inputs(rng, n: int) -> np.ndarray:
    return (np.array(OFFSET) + rng.uniform(-1.5, 1.5, (n, 1, F)) / np.array(SCALE)).astype(np.float32)


def _compile(tmp_path, mb: bytes, xs: np.ndarray):
    (tmp_path / "m.onnx").write_bytes(mb)
    return npukit.compile(tmp_path / "m.onnx", "npu-m", calibration={"input": xs}, sqnr=False)


def test_scalers_and_linear_regressor(tmp_path):
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((F, 16)).astype(np.float32) * 0.5, "b": rng.standard_normal(16).astype(np.float32)}
    nodes = [helper.make_node("Scaler", ["input"], ["scaled"], domain="ai.onnx.ml", offset=OFFSET, scale=SCALE),
             helper.make_node("MatMul", ["scaled", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]),
             helper.make_node("Scaler", ["r"], ["rs"], domain="ai.onnx.ml", offset=[0.5], scale=[2.0]),
             helper.make_node("LinearRegressor", ["rs"], ["variable"], domain="ai.onnx.ml", targets=2,
                              coefficients=list(rng.standard_normal(32).astype(float) * 0.3), intercepts=[0.5, -1.0])]
    mb = _model(nodes, [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [1, 2])], inits)
    xs = _inputs(rng, 64)
    prog = _compile(tmp_path, mb, xs)
    host = prog.profile().host_ops
    assert len(host) == 1 and "Scaler of a model input" in host[0]["reason"], host
    assert sum(la.target == "npu" for la in prog.program.layers) >= 3
    xs = xs[::2]       # inputs within the calibrated ranges
    want = np.concatenate([onnxruntime_outputs(mb, {"input": x})["variable"] for x in xs])
    got = np.concatenate([prog.run({"input": x})["variable"] for x in xs])
    # int8 through two layers: within a few output steps (range ~ 10, step ~ 0.04)
    np.testing.assert_allclose(got, want, atol=0.05 * np.ptp(want))
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


def _tree(zipmap: bool) -> bytes:
    """Two stumps: feature 0 < 5.5 and feature 2 < 13 vote for class 0 or 1."""
    tree = dict(nodes_treeids=[0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 0, 1, 2],
                nodes_featureids=[0, 0, 0, 2, 0, 0], nodes_values=[5.5, 0.0, 0.0, 13.0, 0.0, 0.0],
                nodes_modes=["BRANCH_LT", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
                nodes_truenodeids=[1, 0, 0, 1, 0, 0], nodes_falsenodeids=[2, 0, 0, 2, 0, 0],
                class_treeids=[0, 0, 1, 1], class_nodeids=[1, 2, 1, 2], class_ids=[0, 1, 0, 1],
                class_weights=[0.5, 0.5, 0.5, 0.5], classlabels_int64s=[0, 1])
    nodes = [helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
                              **tree)]
    outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [1])]
    if zipmap:
        nodes.append(helper.make_node("ZipMap", ["probabilities"], ["maps"], domain="ai.onnx.ml",
                                      classlabels_int64s=[0, 1]))
        outputs.append(helper.make_value_info("maps", helper.make_sequence_type_proto(
            helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))))
    else:
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 2]))
    return _model(nodes, outputs)


def test_a_tree_ensemble_runs_on_the_host_reported(tmp_path):
    rng = np.random.default_rng(1)
    mb = _tree(zipmap=False)
    prog = _compile(tmp_path, mb, _inputs(rng, 8))
    host = prog.profile().host_ops
    assert [h["op"] for h in host] == ["host_float"] and "ai.onnx.ml TreeEnsembleClassifier" in host[0]["reason"]
    for x in _inputs(rng, 8):
        want, got = onnxruntime_outputs(mb, {"input": x}), prog.run({"input": x})
        np.testing.assert_array_equal(got["label"], want["label"])
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-6)


def test_a_map_output_is_a_one_line_error(tmp_path):
    with pytest.raises(NpukitError) as e:
        _compile(tmp_path, _tree(zipmap=True), _inputs(np.random.default_rng(2), 8))
    assert "\n" not in str(e.value) and "ZipMap" in str(e.value)
