"""Simulator == integer reference for the NPU lowering of activation x activation MATMUL
(both operand layouts, both zero points, tiles that do not divide the shapes) and GELU."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npukit.api import CompiledModel
from npukit.codegen.context import CompileOptions
from npukit.compiler import compile_graph
from npukit.measure import quantize_inputs
from npukit.ir.graph import DType, GeluAttrs, Graph, MatMulAttrs, Node, Op, Tensor
from npukit.isa import instructions as I
from npukit.sim.reference import run_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402


def attention_graph(h: int, m: int, k: int, n: int, transpose_b: bool, gelu: bool) -> Graph:
    b_shape = (1, h, n, k) if transpose_b else (1, h, k, n)
    t = {"a": Tensor("a", (1, h, m, k), DType.F32), "b": Tensor("b", b_shape, DType.F32),
         "y": Tensor("y", (1, h, m, n), DType.F32)}
    nodes = [Node(Op.MATMUL, "mm", ("a", "b"), ("y",), MatMulAttrs(transpose_b))]
    out = "y"
    if gelu:
        t["z"] = Tensor("z", (1, h, m, n), DType.F32)
        nodes.append(Node(Op.GELU, "gelu", ("y",), ("z",), GeluAttrs("tanh")))
        out = "z"
    return Graph(tuple(nodes), t, ("a", "b"), (out,))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 3), m=st.integers(1, 40), k=st.integers(1, 70), n=st.integers(1, 40),
       transpose_b=st.booleans(), gelu=st.booleans(), small=st.booleans(), seed=st.integers(0, 999))
def test_matmul_sim_equals_reference(h, m, k, n, transpose_b, gelu, small, seed):
    rng = np.random.default_rng(seed)
    g = attention_graph(h, m, k, n, transpose_b, gelu)
    shape_b = g.tensors["b"].shape
    calib = {"a": rng.uniform(-1.0, 2.0, (3, 1, h, m, k)).astype(np.float32),      # non-zero zps
             "b": rng.uniform(-0.3, 1.5, (3,) + shape_b).astype(np.float32)}
    arch = small_arch(4, 2, 2, 8, 8, "ws") if small else small_arch(64, 64, 64, 16, 16, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, options=CompileOptions(), sqnr=False)
    model = CompiledModel(prog, arch, qg)
    assert any(isinstance(i, I.MatMul) for i in prog.instructions)
    assert all(layer.target == "npu" for layer in prog.layers)
    feeds = [{"a": calib["a"][i], "b": calib["b"][i]} for i in range(2)]
    assert qg.tensors["a"].quant.zp != 0 and qg.tensors["b"].quant.zp != 0
    assert_sim_equals_reference(model, feeds)


def test_matmul_reference_is_exact_integer_product():
    """Hand-worked: 1x2 by 2x1 with zero points 1 and -1, unit scales: (3-1)(2+1) + (5-1)(0+1)."""
    g = attention_graph(1, 1, 2, 1, False, False)
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    calib = {"a": np.array([[[[[-126.0, 128.0]]]]], np.float32),
             "b": np.array([[[[[-127.0], [128.0]]]]], np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, qg, _ = compile_graph(g, arch, calib, sqnr=False)
    qa, qb = qg.tensors["a"].quant, qg.tensors["b"].quant
    a = np.array([[[[3, 5]]]], np.int8)
    b = np.array([[[[2], [0]]]], np.int8)
    real = ((a.astype(float) - qa.zp) * qa.s) @ ((b.astype(float) - qb.zp) * qb.s)
    q = qg.tensors["y"].quant
    got = (run_reference(qg, {"a": a, "b": b})["y"].astype(float) - q.zp) * q.s
    assert abs(got.item() - real.item()) <= q.s / 2 + 1e-9
    _ = quantize_inputs
