"""Quantisation rules that hold on any graph, checked end to end (public API, simulated NPU)
against onnxruntime's float model:

- a group of tensors that share one scale (Concat inputs and output, and what reshapes and
  pools tie to them) never takes a fixed-range operator's output range (SIGMOID's [0, 1),
  TANH's [-1, 1)) onto its other members: that output is requantised into the group;
- an int8 SOFTMAX whose calibrated input scale is too small for LiteRT's reference kernel
  compiles (LiteRT's default kernel; bit-exactness is pinned in tests/quant/test_vpu_act.py).
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.ir.graph import Op

# 1x1 conv of 3 channels in [-1, 1] to 4 channels spanning about [-20, 30]
W = np.array([[20, 0, 0], [0, 25, 0], [0, 0, -18], [6, 8, 10]], np.float32).reshape(4, 3, 1, 1)
B = np.array([0, 5, 2, -4], np.float32)


def _model(path, head: str) -> None:
    """x -> conv -> c; the graph ends in a Concat along channels, built by `head`."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"])]
    if head == "sigmoid":          # YOLO-style: box regressions and sigmoid scores side by side
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Concat", ["c", "s"], ["y"], axis=1)]
    elif head == "sigmoid_reshaped":   # the scores reach the Concat through reshapes
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]),
                  helper.make_node("Reshape", ["s", "flat"], ["s2"]),
                  helper.make_node("Reshape", ["c", "flat"], ["c2"]),
                  helper.make_node("Concat", ["c2", "s2"], ["y"], axis=1)]
    elif head == "tanh":
        nodes += [helper.make_node("Tanh", ["c"], ["s"]), helper.make_node("Concat", ["s", "c"], ["y"], axis=1)]
    elif head == "sigmoid_tanh":       # fixed ranges only: the wider one (tanh's) is kept
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Tanh", ["c"], ["t"]),
                  helper.make_node("Concat", ["s", "t"], ["y"], axis=1)]
    else:                              # two sigmoids: the group keeps their fixed range
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "minus_half"], ["n"]),
                  helper.make_node("Sigmoid", ["n"], ["t"]), helper.make_node("Concat", ["s", "t"], ["y"], axis=1)]
    consts = {"w": W, "b": B, "flat": np.array([1, 4, 64], np.int64), "minus_half": np.array(-0.5, np.float32)}
    used = {i for n in nodes for i in n.input}
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used]
    graph = helper.make_graph(nodes, "rules", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                       ir_version=8).SerializeToString())


def _compile_and_compare(path, calib, tests):
    prog = npukit.compile(path, "npu-m", calibration={"x": calib})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = next(t for t in prog.program.outputs if t.name == "y")
    errs = []
    for x in tests:
        want = sess.run(None, {"x": x})[0]
        got = prog.run({"x": x})["y"]
        errs.append(np.abs(got - want).reshape(want.shape[0], want.shape[1], -1).max(axis=(0, 2)))
    return prog, out.scale, np.max(errs, axis=0)


def _data(seed, n):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("head", ["sigmoid", "sigmoid_reshaped", "tanh"])
def test_concat_with_a_fixed_range_output_keeps_the_other_channels(head, tmp_path):
    path = tmp_path / f"{head}.onnx"
    _model(path, head)
    calib = _data(0, 16)
    c = np.einsum("oc,nchw->nohw", W[:, :, 0, 0], calib[:, 0]) + B[:, None, None]
    assert c.min() < -15 and c.max() > 25          # the conv branch spans about [-20, 30]
    prog, scale, err = _compile_and_compare(path, calib, calib[:4])    # inside the calibrated range
    assert scale > 40 / 255                        # the group's scale holds the conv's range
    np.testing.assert_array_less(err, 2 * scale)   # every channel within two steps of float
    fixed = [n for n in prog.qgraph.nodes if n.op in (Op.SIGMOID, Op.TANH)]
    requant = [n for n in prog.qgraph.nodes if n.op is Op.QUANTIZE]
    assert len(fixed) == 1 and [n.inputs for n in requant] == [fixed[0].outputs]
    q = prog.qgraph.tensors[fixed[0].outputs[0]].quant     # the activation keeps LiteRT's fixed range
    assert (q.s, q.zp) == ((1 / 256, -128) if fixed[0].op is Op.SIGMOID else (1 / 128, 0))


@pytest.mark.parametrize("head,scale", [("two_sigmoids", 1 / 256), ("sigmoid_tanh", 1 / 128)])
def test_fixed_ranges_that_hold_the_group_are_kept(head, scale, tmp_path):
    path = tmp_path / f"{head}.onnx"
    _model(path, head)
    calib = _data(0, 16)
    prog, out_scale, err = _compile_and_compare(path, calib, calib[:4])
    assert out_scale == scale
    c_step = prog.qgraph.tensors["c"].quant.s        # the activations' input: slopes are at most 1
    np.testing.assert_array_less(err, 2 * scale + c_step)
    requant = [n for n in prog.qgraph.nodes if n.op is Op.QUANTIZE]
    assert len(requant) == (head == "sigmoid_tanh")        # only the sigmoid moves to tanh's scale


def test_the_fixed_range_output_itself_keeps_its_precision(tmp_path):
    """Consumers outside the group (here the graph output) read the sigmoid at 1/256."""
    path = tmp_path / "both.onnx"
    _model(path, "sigmoid")
    m = onnx.load(str(path))
    m.graph.output.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, None))
    onnx.save(m, str(path))
    calib = _data(0, 16)
    prog = npukit.compile(path, "npu-m", calibration={"x": calib})
    out = next(t for t in prog.program.outputs if t.name == "s")
    assert (out.scale, out.zero_point) == (1 / 256, -128)
    c_step = prog.qgraph.tensors["c"].quant.s
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in calib[:4]:
        want = sess.run(["s"], {"x": x})[0]
        np.testing.assert_array_less(np.abs(prog.run({"x": x})["s"] - want), 1 / 256 + c_step / 4)


def test_softmax_of_a_nearly_constant_input_compiles(tmp_path):
    """Calibrated logits 1e-9 apart: the input scale (~4e-11) is below what LiteRT's reference
    softmax accepts; npukit runs LiteRT's default kernel and gives the uniform distribution."""
    path = tmp_path / "softmax.onnx"
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "sm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                       ir_version=8).SerializeToString())
    rng = np.random.default_rng(0)
    calib = (1e-9 * rng.standard_normal((8, 2, 16))).astype(np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": calib})
    assert prog.profile().host_ops == []
    x = calib[0]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(prog.run({"x": x})["y"], want, atol=1 / 256)


def test_prequantised_tflite_keeps_its_own_requantisation(tmp_path):
    """An int8 TFLite model keeps its scales: LOGISTIC's fixed output reaches the concat
    through the converter's own QUANTIZE, bit for bit as LiteRT's reference; a concat of
    differently quantised inputs is refused, as LiteRT's int8 kernel refuses it."""
    from ai_edge_litert import schema_py_generated as tfl

    from npukit.errors import UnsupportedOpError
    from npukit.testing.tflite_builder import Operator, TensorSpec, build_model, run_reference
    options = tfl.ConcatenationOptionsT()
    options.axis = 3
    shape = (1, 4, 4, 3)
    a, b = TensorSpec("a", shape, "int8", 0.1, 5), TensorSpec("b", shape, "int8", 0.2, -10)
    sig, req = TensorSpec("sig", shape, "int8", 1 / 256, -128), TensorSpec("req", shape, "int8", 0.2, -10)
    y = TensorSpec("y", (1, 4, 4, 6), "int8", 0.2, -10)
    good = build_model([Operator("LOGISTIC", (a,), (sig,)), Operator("QUANTIZE", (sig,), (req,)),
                        Operator("CONCATENATION", (b, req), (y,), options)], [a, b], [y])
    (tmp_path / "good.tflite").write_bytes(good)
    prog = npukit.compile(tmp_path / "good.tflite", "npu-m")
    assert [n.op for n in prog.qgraph.nodes] == [Op.SIGMOID, Op.QUANTIZE, Op.CONCAT]
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, shape).astype(np.int8) for _ in range(2)]
    np.testing.assert_array_equal(prog.run(dict(zip(prog.input_names, xs)))["y"], run_reference(good, xs)[0])
    bad = build_model([Operator("LOGISTIC", (a,), (sig,)), Operator("CONCATENATION", (b, sig), (y,), options)],
                      [a, b], [y])
    (tmp_path / "bad.tflite").write_bytes(bad)
    with pytest.raises(UnsupportedOpError, match="CONCATENATION"):
        npukit.compile(tmp_path / "bad.tflite", "npu-m")
