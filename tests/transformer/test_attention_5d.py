"""An SVTR-style attention block as PP-OCR exports it (qkv projection -> Reshape [B,N,3,heads,d]
-> Transpose (2,0,3,1,4) -> Slice + Squeeze of q, k, v -> softmax(q k^T) v): its 5-D moves
run on the NPU (no host operator), the simulator equals the integer reference exactly and the
output is close to onnxruntime's float."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.isa import instructions as I

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

N, HEADS, D = 12, 2, 8
C = HEADS * D


def attention_onnx(rng) -> bytes:
    ints = lambda name, v: numpy_helper.from_array(np.asarray(v, np.int64), name)  # noqa: E731
    inits = [numpy_helper.from_array(rng.standard_normal((C, 3 * C)).astype(np.float32) * 0.4, "w"),
             numpy_helper.from_array(rng.standard_normal(3 * C).astype(np.float32) * 0.1, "b"),
             numpy_helper.from_array(np.float32(D ** -0.5), "scale"),
             ints("shape5", [1, N, 3, HEADS, D]), ints("shape3", [1, N, C]), ints("ax0", [0])]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["qkv"]),
             helper.make_node("Reshape", ["qkv", "shape5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[2, 0, 3, 1, 4])]
    for i, name in enumerate("qkv"):
        inits += [ints(f"s{i}", [i]), ints(f"e{i}", [i + 1])]
        nodes += [helper.make_node("Slice", ["t5", f"s{i}", f"e{i}", "ax0"], [f"{name}5"]),
                  helper.make_node("Squeeze", [f"{name}5"], [name], axes=[0])]
    nodes += [helper.make_node("Mul", ["q", "scale"], ["qs"]),
              helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
              helper.make_node("MatMul", ["qs", "kt"], ["att"]),
              helper.make_node("Softmax", ["att"], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "v"], ["o"]),
              helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ot", "shape3"], ["y"])]
    graph = helper.make_graph(nodes, "svtr_attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, N, C))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, N, C))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return model.SerializeToString()


def test_svtr_attention_5d_moves_on_npu(tmp_path):
    rng = np.random.default_rng(0)
    data = attention_onnx(rng)
    path = tmp_path / "attention.onnx"
    path.write_bytes(data)
    calib = rng.standard_normal((8, 1, N, C)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = npukit.compile(path, small_arch(64, 64, 64, 16, 16, "ws"), calibration={"x": calib})
    layers = model.program.layers
    assert [layer.op for layer in layers if layer.target != "npu"] == []
    five_d = [i for i, layer in enumerate(layers) if layer.op in ("transpose", "slice")
              and any(len(model.qgraph.tensors[t].shape) == 5 for n in model.qgraph.nodes if n.name in layer.nodes
                      for t in n.inputs)]
    assert len(five_d) == 4, [layers[i].op for i in five_d]      # the 5-D transpose and three slices
    assert all(any(isinstance(ins, I.Dma) and ins.layer == i for ins in model.program.instructions) for i in five_d)
    feeds = [{"x": rng.standard_normal((1, N, C)).astype(np.float32)} for _ in range(3)]
    assert_sim_equals_reference(model, feeds)
    sess = ort.InferenceSession(data)
    for feed in feeds:
        want = sess.run(None, feed)[0]
        got = model.run(feed)["y"]
        q = model.qgraph.tensors[model.qgraph.outputs[0]].quant
        assert np.abs(got - want).max() <= 0.1 * np.abs(want).max() + 4 * q.s
        assert float(got.ravel() @ want.ravel() / np.linalg.norm(got) / np.linalg.norm(want)) >= 0.99
