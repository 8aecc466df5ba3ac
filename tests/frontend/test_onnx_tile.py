"""ONNX Tile by constant repeats on the NPU (a concatenation of copies along each repeated
axis), against onnxruntime float."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from onnx_testutil import assert_compiled_matches_onnxruntime


def _save(tmp_path, nodes, shape, inits, extra_inputs=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph(nodes, "g", [x, *extra_inputs], [y], inits),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = tmp_path / "tile.onnx"
    path.write_bytes(m.SerializeToString())
    return path


@pytest.mark.parametrize(("shape", "reps"), [((1, 3, 4, 5), (1, 2, 1, 3)), ((1, 3, 4, 5), (2, 1, 2, 1)),
                                             ((2, 3, 4), (1, 3, 2)), ((3, 4), (2, 1)), ((1, 3, 4, 5), (1, 1, 1, 1))])
def test_tile_on_the_npu_matches_onnxruntime(tmp_path, shape, reps) -> None:
    r = numpy_helper.from_array(np.array(reps, np.int64), "r")
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Tile", ["a", "r"], ["y"])]
    path = _save(tmp_path, nodes, list(shape), [r])
    assert_compiled_matches_onnxruntime(path, np.random.default_rng(2).standard_normal((4, *shape)).astype(np.float32))


def test_tile_by_repeats_read_from_an_input_needs_them_bound(tmp_path) -> None:
    """Repeats read from an input set the output's shape: a one-line error saying to bind
    them; bound with input_values, the Tile runs on the NPU."""
    reps = helper.make_tensor_value_info("r", TensorProto.INT64, [2])
    path = _save(tmp_path, [helper.make_node("Tile", ["x", "r"], ["y"])], [3, 4], [], [reps])
    xs = np.random.default_rng(2).standard_normal((4, 3, 4)).astype(np.float32)
    r = np.array([2, 1], np.int64)
    with pytest.raises(npukit.errors.ModelError, match="bind the inputs it reads with input values"):
        npukit.compile(path, "npu-m", calibration={"x": xs, "r": np.stack([r] * 4)}, sqnr=False)
    prog = npukit.compile(path, "npu-m", calibration={"x": xs}, input_values={"r": r}, sqnr=False)
    assert not prog.profile().host_ops
    want = ort.InferenceSession(str(path)).run(None, {"x": xs[0], "r": r})[0]
    got = prog.run({"x": xs[0]})["y"]
    assert np.abs(got - want).max() <= 0.51 * prog.program.inputs[0].scale
