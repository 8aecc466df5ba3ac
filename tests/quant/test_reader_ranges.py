"""Ranges clipped to what their readers tell apart (quant.saturate, option flat_clip=auto): an
activation that only a hard-swish (constant 0 below -3) or a clamp reads is quantised on its
calibrated range clipped to that bound; checked end to end (public API, simulated NPU) against onnxruntime's float
model, and on a hand-worked graph."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.ir.graph import Clamp, Op
from npukit.quant.calibrate import Range
from npukit.quant.saturate import clip_to_readers


def _conv_then(path, act: str, w: np.ndarray, b: np.ndarray) -> None:
    """x[1,2,6,6] -> 1x1 conv -> c -> `act` -> y."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]), helper.make_node(act, ["c"], ["y"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
                     .SerializeToString())


def _errors(path, prog, xs) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return max(float(np.abs(prog.run({"x": x})["y"] - sess.run(None, {"x": x})[0]).max()) for x in xs)


def test_hard_swish_input_is_clipped_at_minus_three(tmp_path):
    path = tmp_path / "hs.onnx"
    w = np.array([[30, 0], [0, 12]], np.float32).reshape(2, 2, 1, 1)
    _conv_then(path, "HardSwish", w, np.array([-10, 2], np.float32))
    xs = np.random.default_rng(0).uniform(-1, 1, (8, 1, 2, 6, 6)).astype(np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": xs}, method="minmax", options={"flat_clip": "auto"})
    plain = npukit.compile(path, "npu-m", calibration={"x": xs}, method="minmax")
    assert (-128 - plain.qgraph.tensors["c"].quant.zp) * plain.qgraph.tensors["c"].quant.s < -30   # the default keeps it
    c = prog.qgraph.tensors["c"].quant
    lowest = (-128 - c.zp) * c.s
    assert -3 - c.s <= lowest <= -3 + c.s          # calibrated down to about -40, clipped at -3
    assert c.s < (20 + 40) / 255 * 0.6             # so the positive side keeps more codes
    out = prog.qgraph.tensors["y"].quant
    assert _errors(path, prog, xs[:4]) <= 2 * out.s + c.s     # hard-swish's slope is at most 1.5


def test_clip_only_where_every_reader_is_flat(tmp_path):
    """c: read by a hard-swish and an Add (not clipped); r: by a relu6 only; y: graph output."""
    from npukit.compiler import load_model
    nodes = [helper.make_node("Relu", ["x"], ["c"]), helper.make_node("HardSwish", ["c"], ["h"]),
             helper.make_node("Add", ["c", "h"], ["r"]), helper.make_node("Clip", ["r", "lo", "hi"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "readers.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
                     .SerializeToString())
    g = load_model(path, None)
    ranges = {t: Range(-40.0, 20.0) for t in ("c", "h", "r", "y")}
    got = clip_to_readers(g, ranges)
    clip = next(n for n in g.nodes if n.op is Op.CLAMP and n.outputs == ("y",))
    assert clip.attrs == Clamp(0.0, 6.0) and clip.inputs[0] == "r"
    assert got == {"c": Range(-40.0, 20.0), "h": Range(-40.0, 20.0), "r": Range(0.0, 6.0), "y": Range(-40.0, 20.0)}
