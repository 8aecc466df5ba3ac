"""`npukit export --qdq`: onnxruntime runs the exported QDQ model close to npukit's simulator
(per layer within one step, from the same int8 inputs), and the file re-imported by npukit's
QDQ frontend gives back npukit's own quantisation and bit-exact outputs."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import npukit
from npukit.cli import app
from npukit.export import export_qdq, to_qdq_onnx
from npukit.models import zoo
from npukit.models.datasets import digits_split
from npukit.kernels.qexec import run_qnode

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"


def _compile(path, shapes, calib=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npukit.compile(path, arch="npu-m", input_shapes=shapes, calibration=calib, sqnr=False)


def _weights(qg):
    return [(qg.tensors[n.inputs[1]].data, qg.tensors[n.inputs[1]].quant.scale, qg.tensors[n.inputs[2]].data)
            for n in qg.nodes if n.op.value in ("conv2d", "fully_connected")]


def _check_round_trip(prog, path, name, shape, xs):
    again = _compile(path, {name: shape})
    for (w1, s1, b1), (w2, s2, b2) in zip(_weights(prog.qgraph), _weights(again.qgraph), strict=True):
        assert np.array_equal(w1, w2) and s1 == s2 and np.array_equal(b1, b2)
    for io1, io2 in zip(prog.program.inputs + prog.program.outputs, again.program.inputs + again.program.outputs):
        assert (io1.scale, io1.zero_point) == (io2.scale, io2.zero_point)
    for x in xs:
        a, b = prog.run({name: x}), again.run({name: x})
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_digits_export_runs_in_onnxruntime_and_round_trips(tmp_path):
    split = digits_split(seed=0)
    prog = _compile(DIGITS, {"x": (1, 1, 8, 8)}, {"x": split.x_train[:64][:, None]})
    path = export_qdq(prog, tmp_path / "digits_qdq.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = split.x_test[:200]
    theirs = np.concatenate([sess.run(None, {"x": x[None]})[0] for x in xs])
    ours = np.concatenate([prog.run({"x": x[None]})["logits"] for x in xs])
    assert np.max(np.abs(theirs - ours)) <= 2.01 * prog.program.outputs[0].scale
    assert np.mean(theirs.argmax(1) == ours.argmax(1)) >= 0.99
    kinds = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= kinds
    _check_round_trip(prog, path, "x", (1, 1, 8, 8), [x[None] for x in xs[:10]])


def test_zoo_resnet8_export(tmp_path):
    src = zoo.save(zoo.resnet8(), tmp_path / "resnet8.onnx")
    rng = np.random.default_rng(0)
    shape = (1, 3, 32, 32)
    prog = _compile(src, {"input": shape}, {"input": rng.standard_normal((16,) + shape).astype(np.float32)})
    path = export_qdq(prog, tmp_path / "resnet8_qdq.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = rng.standard_normal((8,) + shape).astype(np.float32)
    theirs = np.concatenate([sess.run(None, {"input": x})[0] for x in xs])
    ours = np.concatenate([prog.run({"input": x})["logits"] for x in xs])
    assert np.max(np.abs(theirs - ours)) <= 4.01 * prog.program.outputs[0].scale
    assert np.array_equal(theirs.argmax(1), ours.argmax(1))
    _check_round_trip(prog, path, "input", shape, xs[:3])


def test_each_layer_within_one_step_of_onnxruntime_on_a_depthwise_net():
    """Deep random-weight nets amplify 1-step rounding differences layer after layer, so the
    operator semantics are compared per layer: each npukit layer fed onnxruntime's int8 inputs."""
    shape = (1, 3, 96, 96)
    rng = np.random.default_rng(1)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        src = zoo.save(zoo.mobilenet_v1(), Path(tmp) / "mbv1.onnx")
        prog = _compile(src, {"input": shape}, {"input": rng.standard_normal((8,) + shape).astype(np.float32)})
    g, model = prog.qgraph, to_qdq_onnx(prog)
    quantised = {n.output[0].rsplit("/q", 1)[0]: n.output[0] for n in model.graph.node
                 if n.op_type == "QuantizeLinear"}
    quantised = {k: v for k, v in quantised.items() if k in g.tensors}
    for q in quantised.values():
        model.graph.output.append(onnx.helper.make_tensor_value_info(q, onnx.TensorProto.INT8, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = dict(zip([o.name for o in sess.get_outputs()],
                    sess.run(None, {"input": rng.standard_normal(shape).astype(np.float32)})))

    def ort_value(t):
        a = outs[quantised[t]]
        return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a     # exported 4-D values are NCHW

    checked = set()
    for node in g.nodes:
        if node.outputs[0] not in quantised or node.inputs[0] not in quantised:
            continue
        ins = [g.tensors[t].data if g.tensors[t].is_const else ort_value(t) for t in node.inputs]
        ours = run_qnode(node, ins, [g.tensors[t].quant for t in node.inputs]).astype(int)
        assert np.max(np.abs(ours - ort_value(node.outputs[0]).astype(int))) <= 1, node.name
        checked.add((node.op.value, getattr(node.attrs, "depthwise", False)))
    assert {("conv2d", True), ("conv2d", False)} <= checked


def test_cli_export(tmp_path):
    out = tmp_path / "d.onnx"
    split = digits_split(seed=0)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=split.x_train[:32][:, None])
    r = CliRunner().invoke(app, ["export", str(DIGITS), "--input-shape", "x=1,1,8,8", "--calib", str(calib),
                                 "--qdq", str(out)])
    assert r.exit_code == 0, r.output
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": split.x_test[:1]})[0].shape == (1, 10)


def test_export_of_a_loaded_binary_is_a_clear_error(tmp_path):
    prog = _compile(DIGITS, {"x": (1, 1, 8, 8)})
    prog.save(tmp_path / "d.npub")
    with pytest.raises(npukit.errors.InputError, match="quantised graph"):
        export_qdq(npukit.load(tmp_path / "d.npub"), tmp_path / "x.onnx")


def test_element_wise_functions_and_reductions_export(tmp_path):
    """Exp / Erf / Elu tables and ReduceSum / ReduceMax / ReduceMean export as their ONNX
    operators between Q/DQ pairs; onnxruntime then lands within a step of the simulator."""
    from onnx import helper
    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Erf", ["e"], ["f"]),
             helper.make_node("Elu", ["x"], ["u"], alpha=0.5),
             helper.make_node("ReduceSum", ["f", "ax"], ["s"], keepdims=0),
             helper.make_node("ReduceMax", ["u"], ["m"], axes=[1, 3], keepdims=1),
             helper.make_node("ReduceMean", ["u"], ["a"], axes=[2], keepdims=0)]
    shape = (1, 3, 4, 5)
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in "sma"],
                              [onnx.numpy_helper.from_array(np.asarray([1, 2], np.int64), "ax")])
    src = tmp_path / "fns.onnx"
    src.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
                    .SerializeToString())
    rng = np.random.default_rng(0)
    prog = _compile(src, {"x": shape}, {"x": rng.normal(size=(8, *shape)).astype(np.float32)})
    path = export_qdq(prog, tmp_path / "fns_qdq.onnx")
    kinds = {n.op_type for n in onnx.load(path).graph.node}
    assert {"Exp", "Erf", "Elu", "ReduceSum", "ReduceMax", "ReduceMean"} <= kinds
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(size=shape).astype(np.float32)
    theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    ours = prog.run({"x": x})
    for t in prog.program.outputs:
        assert np.max(np.abs(theirs[t.name] - ours[t.name])) <= 2.01 * t.scale, t.name
