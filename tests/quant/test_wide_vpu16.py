"""A float graph widened to int16 by the noise report (`int16_below_db`): the 16x8 VPU ops
(MUL, LOGISTIC, SOFTMAX, MEAN) fed by a widened tensor widen their outputs too, get TFLite's
16x8 params (LOGISTIC / SOFTMAX at scale 1/32768), run on the NPU, and the simulator equals
the integer reference; widening stops where a consumer cannot read int16 or at a graph output."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from npukit.api import CompiledModel
from npukit.compiler import compile_graph
from npukit.ir.graph import DType, EltwiseAttrs, Graph, LeakyReluAttrs, MeanAttrs, Node, NoAttrs, Op, SoftmaxAttrs, Tensor
from npukit.kernels.kernels_vpu16 import Sigmoid16Params, Softmax16Params
from npukit.quant.wide import choose_int16

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402


def gated_graph() -> Graph:
    """s = x + y; m = sigmoid(s) * s; p = softmax(m); q = mean(p, axis 1); out = q + z."""
    act = lambda name, shape: Tensor(name, shape, DType.F32)  # noqa: E731
    full, row = (1, 6, 16), (1, 1, 16)
    t = {n: act(n, full) for n in ("x", "y", "s", "a", "m", "p")} | {n: act(n, row) for n in ("q", "z", "out")}
    nodes = (Node(Op.ADD, "add", ("x", "y"), ("s",), EltwiseAttrs()),
             Node(Op.SIGMOID, "sig", ("s",), ("a",), NoAttrs()),
             Node(Op.MUL, "gate", ("a", "s"), ("m",), EltwiseAttrs()),
             Node(Op.SOFTMAX, "soft", ("m",), ("p",), SoftmaxAttrs()),
             Node(Op.MEAN, "mean", ("p",), ("q",), MeanAttrs((1,), True)),
             Node(Op.ADD, "tail", ("q", "z"), ("out",), EltwiseAttrs()))
    return Graph(nodes, t, ("x", "y", "z"), ("out",))


def test_widening_follows_the_16x8_ops():
    rng = np.random.default_rng(0)
    g = gated_graph()
    calib = {"x": rng.standard_normal((4, 1, 6, 16)).astype(np.float32) * 3,
             "y": rng.standard_normal((4, 1, 6, 16)).astype(np.float32),
             "z": rng.standard_normal((4, 1, 1, 16)).astype(np.float32) * 0.01}
    arch = small_arch(8, 4, 4, 8, 8, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, sqnr=False, int16_below_db=200.0)
    assert {n for n in ("s", "a", "m", "p", "q") if qg.tensors[n].dtype is DType.I16} == {"s", "a", "m", "p", "q"}
    assert qg.tensors["out"].dtype is DType.I8                   # a graph output stays int8
    for name in ("a", "p"):
        assert (qg.tensors[name].quant.s, qg.tensors[name].quant.zp) == (1 / 32768, 0)
    params = {n.name: n.params for n in qg.nodes}
    assert isinstance(params["sig"], Sigmoid16Params) and isinstance(params["soft"], Softmax16Params)
    assert params["soft"].floor_tail == 0       # npukit's own int16 softmax: no exp(-10) floor
    targets = {layer.name: layer.target for layer in prog.layers}
    assert all(targets[n] == "npu" for n in ("sig", "gate", "soft", "mean")), targets
    feeds = [{k: v[i] for k, v in calib.items()} for i in range(2)]
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds)


def test_widening_stops_at_a_consumer_without_int16():
    """A tensor read by an op without an int16 path (here LEAKY_RELU) stays int8, and so do the
    16x8 ops' outputs on the way to it."""
    act = lambda name: Tensor(name, (1, 8), DType.I8)  # noqa: E731
    t = {n: act(n) for n in ("x", "y", "s", "a", "h")}
    nodes = (Node(Op.ADD, "add", ("x", "y"), ("s",), EltwiseAttrs()),
             Node(Op.SIGMOID, "sig", ("s",), ("a",), NoAttrs()),
             Node(Op.LEAKY_RELU, "hs", ("a",), ("h",), LeakyReluAttrs(0.1)))
    g = Graph(nodes, t, ("x", "y"), ("h",))
    assert choose_int16(g, {"add": 0.0, "sig": 0.0, "hs": 0.0}, 30.0) == frozenset()


def test_constant_beside_an_int16_operand_is_int16():
    """ADD(x, c) with x widened: c is quantised int16 symmetric, the layer then runs on the VPU's
    int16 form, and its output is within one output step of the float sum."""
    from npukit.kernels.qexec import run_qnode
    from npukit.quant.calibrate import Range
    from npukit.quant.quantize import quantize_graph

    c = np.linspace(-3, 2, 16).astype(np.float32)
    t = {"x": Tensor("x", (1, 16), DType.F32), "c": Tensor("c", (16,), DType.F32, c), "y": Tensor("y", (1, 16), DType.F32)}
    g = Graph((Node(Op.ADD, "add", ("x", "c"), ("y",), EltwiseAttrs()),), t, ("x",), ("y",))
    qg = quantize_graph(g, {"x": Range(-4.0, 4.0), "y": Range(-7.0, 6.0)}, frozenset({"x", "y"}))
    cq, xq, yq = qg.tensors["c"], qg.tensors["x"].quant, qg.tensors["y"].quant
    assert cq.dtype is DType.I16 and cq.quant.zp == 0
    x = np.linspace(-4, 4, 16, dtype=np.float32).reshape(1, 16)
    codes = np.round(x / xq.s).astype(np.int16)
    got = run_qnode(qg.nodes[0], [codes, cq.data], [xq, cq.quant]).astype(np.float64) * yq.s
    assert np.max(np.abs(got - (codes * xq.s + cq.data * cq.quant.s))) <= yq.s
