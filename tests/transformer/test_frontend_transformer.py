"""ONNX import of transformer pieces against onnxruntime: decomposed GELU (erf and tanh) and
layer norm are fused, masks fold once bound, MatMul of two activations; and MiniLM itself."""
from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float

SHAPE = (1, 2, 5, 8)


def _model(nodes, inits, n_inputs=1, opset=17):
    ins = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, SHAPE) for i in range(n_inputs)]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "t", ins, [out], [numpy_helper.from_array(np.asarray(v, np.float32), k)
                                                       for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _check(data, n_inputs=1):
    rng = np.random.default_rng(0)
    feeds = {f"x{i}": rng.standard_normal(SHAPE).astype(np.float32) for i in range(n_inputs)}
    want = ort.InferenceSession(data).run(None, feeds)[0]
    g = load_onnx(data)
    got = run_float(g, feeds)["y"]
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    return g


def test_gelu_erf_form_is_fused():
    nodes = [helper.make_node("Div", ["x0", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["half", "a"], ["h"]),
             helper.make_node("Mul", ["x0", "h"], ["y"])]
    g = _check(_model(nodes, {"sqrt2": math.sqrt(2), "one": 1.0, "half": 0.5}))
    assert [n.op for n in g.nodes if n.op not in (Op.TRANSPOSE, Op.RESHAPE)] == [Op.GELU]


def test_gelu_tanh_form_is_fused():
    nodes = [helper.make_node("Pow", ["x0", "three"], ["p"]), helper.make_node("Mul", ["p", "c"], ["pc"]),
             helper.make_node("Add", ["x0", "pc"], ["u"]), helper.make_node("Mul", ["u", "k"], ["v"]),
             helper.make_node("Tanh", ["v"], ["t"]), helper.make_node("Add", ["t", "one"], ["a"]),
             helper.make_node("Mul", ["x0", "a"], ["xa"]), helper.make_node("Mul", ["xa", "half"], ["y"])]
    g = _check(_model(nodes, {"three": 3.0, "c": 0.044715, "k": math.sqrt(2 / math.pi), "one": 1.0, "half": 0.5}))
    gelus = [n for n in g.nodes if n.op is Op.GELU]
    assert len(gelus) == 1 and gelus[0].attrs.approximate == "tanh"


@pytest.mark.parametrize("reshaped", [False, True])
def test_decomposed_layer_norm_is_fused(reshaped):
    """`reshaped`: gamma and beta stored as [1, 8] and reshaped to [8] by Reshape nodes, as
    paddle2onnx exports them (PP-OCRv5's recogniser)."""
    rng = np.random.default_rng(1)
    gamma, beta = ("gamma_r", "beta_r") if reshaped else ("gamma", "beta")
    shape = numpy_helper.from_array(np.array([8], np.int64))
    nodes = [helper.make_node("ReduceMean", ["x0"], ["m"], axes=[-1]), helper.make_node("Sub", ["x0", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["d2"]), helper.make_node("ReduceMean", ["d2"], ["v"], axes=[-1]),
             helper.make_node("Add", ["v", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["s"]),
             helper.make_node("Div", ["d", "s"], ["n"]), helper.make_node("Mul", ["n", gamma], ["ng"]),
             helper.make_node("Add", ["ng", beta], ["y"])]
    if reshaped:
        nodes[:0] = [helper.make_node("Constant", [], ["shape"], value=shape),
                     helper.make_node("Reshape", ["gamma", "shape"], ["gamma_r"]),
                     helper.make_node("Reshape", ["beta", "shape"], ["beta_r"])]
    size = (1, 8) if reshaped else (8,)
    g = _check(_model(nodes, {"two": 2.0, "eps": 1e-5, "gamma": rng.uniform(0.5, 2, size),
                              "beta": rng.standard_normal(size)}))
    assert [n.op for n in g.nodes if n.op not in (Op.TRANSPOSE, Op.RESHAPE)] == [Op.LAYER_NORM]


def test_attention_scores_with_nan_guard():
    """softmax(q k^T) v with the exporter's Where(IsNaN(p), 0, p) guard."""
    nodes = [helper.make_node("Transpose", ["x1"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["x0", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("IsNaN", ["p"], ["nan"]), helper.make_node("Where", ["nan", "zero", "p"], ["pg"]),
             helper.make_node("MatMul", ["pg", "x2"], ["y"])]
    g = _check(_model(nodes, {"zero": 0.0}, n_inputs=3), n_inputs=3)
    assert sum(n.op is Op.MATMUL for n in g.nodes) == 2


def test_erf_alone_is_an_elementwise_table():
    g = _check(_model([helper.make_node("Erf", ["x0"], ["y"])], {}))
    assert [n.attrs.fn for n in g.nodes if n.op is Op.UNARY] == ["erf"]


def test_minilm_on_npu_close_to_onnxruntime():
    """The real model: one sentence's token ids, int8 with int16 residual sums."""
    from npukit.api import CompiledModel
    from npukit.arch import load_arch
    from npukit.compiler import compile_graph
    from npukit.testing.fixtures import real_model
    path = real_model("minilm-int8")
    ids = np.array([[101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]])
    n = ids.shape[1]
    bound = {"attention_mask": np.ones((1, n), np.int64), "token_type_ids": np.zeros((1, n), np.int64)}
    g = load_onnx(path, {"input_ids": (1, n)}, bound)
    rng = np.random.default_rng(0)
    calib = np.stack([ids] + [np.concatenate([[[101]], rng.integers(2000, 8000, (1, n - 2)), [[102]]], 1)
                              for _ in range(3)]).astype(np.float32)
    arch = load_arch("npu-m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, {"input_ids": calib}, sqnr=False, int16_below_db=30)
    hidden = CompiledModel(prog, arch, qg).run({"input_ids": ids})["last_hidden_state"]
    want = ort.InferenceSession(str(path)).run(None, {"input_ids": ids, **bound})[0]
    a, b = hidden[0].mean(0), want[0].mean(0)
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.9
    assert sum(layer.target == "npu" and layer.op == "matmul" for layer in prog.layers) == 12
    _ = onnx

