"""Build small ONNX models and compare npukit's import + float executor with onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Graph, Op
from npukit.opt.pipeline import optimize
from npukit.kernels.float_exec import run_float


def model_bytes(nodes, inputs: dict, outputs: list[str], inits: dict | None = None, opset: int = 13) -> bytes:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    return model.SerializeToString()


def onnxruntime_outputs(mb: bytes, feeds: dict) -> dict[str, np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(mb, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def random_feeds(mb: bytes, seed: int = 0, shapes: dict | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = onnx.load_model_from_string(mb)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = (shapes or {}).get(vi.name) or [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32) * 2
    return feeds


def check_against_onnxruntime(mb: bytes, feeds: dict | None = None, input_shapes: dict | None = None,
                              rtol: float = 1e-4, atol: float = 1e-4) -> Graph:
    """Imported and optimised graphs both match onnxruntime; returns the optimised graph."""
    feeds = feeds or random_feeds(mb, shapes=input_shapes)
    want = onnxruntime_outputs(mb, feeds)
    raw = load_onnx(mb, input_shapes)
    opt = optimize(raw)
    for g in (raw, opt):
        got = run_float(g, feeds)
        for name, ref in want.items():
            assert got[name].shape == ref.shape, (name, got[name].shape, ref.shape)
            np.testing.assert_allclose(got[name], ref, rtol=rtol, atol=atol, err_msg=name)
    return opt


def ops(g: Graph) -> list[Op]:
    return [n.op for n in g.nodes]


def node(op_type: str, inputs, outputs, **attrs):
    return helper.make_node(op_type, list(inputs), list(outputs), name=f"{op_type}_{outputs[0]}", **attrs)


def assert_compiled_matches_onnxruntime(path, xs: np.ndarray, k: int = 1, steps: float = 1.5) -> None:
    """The model at `path` compiled on npu-m with calibration samples `xs` (input "x") runs
    every layer on the NPU and, on sample k, is within `steps` output int8 steps of
    onnxruntime (the input's and the output's rounding)."""
    import npukit
    prog = npukit.compile(path, "npu-m", calibration={"x": xs}, sqnr=False)
    assert not prog.profile().host_ops
    want = ort.InferenceSession(str(path)).run(None, {"x": xs[k]})[0]
    got = prog.run({"x": xs[k]})["y"]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= steps * prog.program.outputs[0].scale


def map_fn_model(row_nodes, consts: dict) -> bytes:
    """tf2onnx's map_fn over a batch of 2 ([2, 3, 4] input x): Loop(INT64_MAX, 0 < n), n the batch
    from Shape, whose body takes row i (Gather) and computes "scan" from it by `row_nodes`
    (reading the float constants `consts`), i + 1 < n its condition; the stacked scans through a
    Relu give y."""
    body = helper.make_graph(
        [node("Gather", ["x", "i"], ["row"], axis=0), *row_nodes,
         node("Add", ["i", "one_i"], ["i1"]), node("Less", ["i1", "n"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("scan", TensorProto.FLOAT, [3, 4])],
        [numpy_helper.from_array(np.array(1, np.int64), "one_i")])
    nodes = [node("Shape", ["x"], ["shape"]), node("Gather", ["shape", "zero_i"], ["n"], axis=0),
             node("Less", ["zero_i", "n"], ["go"]), node("Loop", ["M", "go"], ["stacked"], body=body),
             node("Relu", ["stacked"], ["y"])]
    inits = [numpy_helper.from_array(np.array(2**63 - 1, np.int64), "M"),
             numpy_helper.from_array(np.array(0, np.int64), "zero_i"),
             *(numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items())]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()
