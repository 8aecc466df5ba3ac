"""Random calibration draws integer inputs (indices) the model may not take: a ScatterElements
into a one-row tensor by a random row index 1 fails in onnxruntime (minimol's `batch` ids
past its one graph). The one-line error says the inputs were random and to give real ones;
with them the model compiles and runs as onnxruntime does."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper

import npukit
from npukit.errors import ModelError
from onnx_testutil import onnxruntime_outputs


def _model() -> bytes:
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("ScatterElements", ["r", "rows", "x"], ["s"], axis=0),
             helper.make_node("Add", ["s", "x"], ["y"])]
    graph = helper.make_graph(nodes, "scatter", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                                                 helper.make_tensor_value_info("rows", TensorProto.INT64, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def test_random_index_inputs_name_the_random_calibration(tmp_path):
    (tmp_path / "m.onnx").write_bytes(mb := _model())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelError, match=r"failed in onnxruntime.*random calibration inputs: pass real samples"
                                             r" with --calib") as e:
            npukit.compile(tmp_path / "m.onnx", "npu-m")
    assert "\n" not in str(e.value)
    rng = np.random.default_rng(0)
    calib = {"x": rng.standard_normal((8, 1, 4)).astype(np.float32), "rows": np.zeros((8, 1, 4), np.int64)}
    prog = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration=calib, sqnr=False)
    feed = {"x": calib["x"][0], "rows": calib["rows"][0]}
    np.testing.assert_allclose(prog.run(feed)["y"], onnxruntime_outputs(mb, feed)["y"], atol=0.05)
