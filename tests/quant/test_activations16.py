"""HARD_SWISH of an int16 input (LiteRT has none: its HARD_SWISH refuses int16, "Only float32,
uint8 and int8 are supported"): LiteRT's int16 table scheme (513 anchors, 7-bit interpolation)
against the float function; PRELU of int16 codes (LiteRT has no int16 PRELU either: the int8
kernel's arithmetic on int16 codes, an int16 slope) against the float function; and a widened
conv -> hard-swish (PReLU, RELU6) -> conv chain that now runs in int16 throughout on the NPU,
simulator = integer reference, closer to float than int8."""
from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.api import CompiledModel
from npukit.codegen.context import CompileOptions
from npukit.compiler import compile_graph
from npukit.ir.graph import Clamp, ConvAttrs, DType, Graph, LeakyReluAttrs, Node, NoAttrs, Op, ReshapeAttrs, Tensor, \
    UnaryAttrs
from npukit.kernels import kernels_relu16 as kr
from npukit.kernels import kernels_vpu as kv
from npukit.kernels import kernels_vpu16 as k16
from npukit.kernels.float_exec import run_float
from npukit.measure import run_dequantised

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None)
f32 = lambda v: float(np.float32(v))  # noqa: E731
CODES = np.arange(-32768, 32768, dtype=np.int16)


@SETTINGS
@given(s_in=st.floats(-14.0, -7.0).map(lambda e: f32(2.0 ** e)), ratio=st.floats(0.0, 1.0), wide_out=st.booleans())
def test_hard_swish_int16_input_close_to_float(s_in, ratio, wide_out):
    """Every int16 code against x relu6(x + 3) / 6 in output steps. With h = 128 s_in (one
    anchor step), the chord's midpoint error on the parabola (|f''| = 1/3) is
    K = h^2 / (3 * 8 s_out): more than two anchors from the kinks at -3 and +3, int16 out is
    within 2.5 + K / 2 (LiteRT's 65536 / 65535 output scaling and half-step roundings, the
    bound of the int16 GELU table; measured 2.36 + K / 2 over 180 scale pairs), int8 out
    within 0.55 + K / 2 (7 fraction bits per anchor; measured 0.51). Within two anchors of a
    kink the chord cuts the corner (slope change 1/2): at most h / (8 s_out) more
    (measured: int16 -1.2 below it, int8 0.47 above it)."""
    x = CODES * np.float64(s_in)
    ref = x * np.clip(x + 3, 0, 6) / 6
    if wide_out:
        s_out, zp, lo, hi = f32(max(ref.max(), 0.375) / 32767 * 2.0 ** ratio), 0, -32768, 32767
    else:
        s_out = f32((ref.max() - ref.min()) / 255 * 2.0 ** (ratio / 3))
        zp, lo, hi = int(np.clip(np.round(-128 - ref.min() / s_out), -128, 127)), -128, 127
    p = kv.hard_swish_lut16(s_in, 0, s_out, zp, 2 if wide_out else 1)
    got = k16.lut16(CODES, p)
    assert got.dtype == (np.int16 if wide_out else np.int8)
    err = np.abs(got.astype(np.float64) - np.clip(ref / np.float64(s_out) + zp, lo, hi))
    h = 128 * np.float64(s_in)
    near = np.abs(np.abs(x) - 3) < 2 * h
    k = h * h / 3 / (8 * s_out)
    base = 2.5 if wide_out else 0.55
    assert err[~near].max() <= base + k / 2
    assert err.max() <= base + k / 2 + h / (8 * s_out)


def hard_swish_chain(prelu: bool = False) -> tuple[Graph, dict[str, np.ndarray]]:
    """x -> 1x1 conv (8 -> 16) -> HARD_SWISH (or PRELU, a slope per channel) -> 1x1 conv
    (16 -> 4) -> out, NHWC."""
    rng = np.random.default_rng(3)
    slope = np.linspace(-0.3, 0.6, 16).astype(np.float32)
    w1 = (rng.standard_normal((16, 1, 1, 8)) * 0.8).astype(np.float32)
    w2 = (rng.standard_normal((4, 1, 1, 16)) * 0.4).astype(np.float32)
    t = {"x": Tensor("x", (1, 6, 6, 8), DType.F32), "h": Tensor("h", (1, 6, 6, 16), DType.F32),
         "a": Tensor("a", (1, 6, 6, 16), DType.F32), "out": Tensor("out", (1, 6, 6, 4), DType.F32),
         "w1": Tensor("w1", w1.shape, DType.F32, w1), "b1": Tensor("b1", (16,), DType.F32, np.zeros(16, np.float32)),
         "w2": Tensor("w2", w2.shape, DType.F32, w2), "b2": Tensor("b2", (4,), DType.F32, np.zeros(4, np.float32)),
         "slope": Tensor("slope", (16,), DType.F32, slope)}
    act = Node(Op.PRELU, "hs", ("h", "slope"), ("a",), NoAttrs()) if prelu else Node(Op.HARD_SWISH, "hs", ("h",), ("a",), NoAttrs())
    nodes = (Node(Op.CONV2D, "c1", ("x", "w1", "b1"), ("h",), ConvAttrs()), act,
             Node(Op.CONV2D, "c2", ("a", "w2", "b2"), ("out",), ConvAttrs()))
    calib = {"x": (rng.standard_normal((6, 1, 6, 6, 8)) * 1.5).astype(np.float32)}
    return Graph(nodes, t, ("x",), ("out",)), calib


def _sqnr(g: Graph, qg: Graph, feeds: list[dict]) -> float:
    sig = noise = 0.0
    for f in feeds:
        want = np.asarray(run_float(g, f)["out"], np.float64)
        got = run_dequantised(qg, f)["out"]
        sig, noise = sig + float(np.sum(want ** 2)), noise + float(np.sum((want - got) ** 2))
    return 10 * np.log10(sig / noise)


def _int16_and_int8(g, calib):
    """(arch, feeds, the --precision int16 program, its graph, the int8 graph) of a chain."""
    arch = small_arch(16, 8, 8, 8, 8, "ws")
    feeds = [{"x": calib["x"][i]} for i in range(calib["x"].shape[0])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, sqnr=False, options=replace(CompileOptions(), precision="int16"))
        _, q8, _ = compile_graph(g, arch, calib, sqnr=False)
    return arch, feeds, prog, qg, q8


@pytest.mark.parametrize("prelu", [False, True])
def test_activation_widens_with_its_conv_chain(prelu):
    """precision int16 widens the hard-swish (PReLU) with the convs (it stopped the widening
    before): int16 in and out (hard-swish by its table, PReLU with an int16 slope), on the NPU,
    simulator = integer reference, and the output gains over all-int8 what int16 activations
    give (int8 weights remain: > 5 dB; here 8.4 dB hard-swish)."""
    g, calib = hard_swish_chain(prelu)
    arch, feeds, prog, qg, q8 = _int16_and_int8(g, calib)
    hs = next(n for n in qg.nodes if n.name == "hs")
    assert qg.tensors[hs.inputs[0]].dtype is DType.I16 and qg.tensors[hs.outputs[0]].dtype is DType.I16
    assert isinstance(hs.params, kv.PreluParams if prelu else k16.Lut16Params)
    if prelu:
        assert qg.tensors["slope"].dtype is DType.I16 and qg.tensors["slope"].quant.zp == 0
    assert {layer.name: layer.target for layer in prog.layers}[hs.name] == "npu"
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds[:2])
    assert _sqnr(g, qg, feeds) > _sqnr(g, q8, feeds) + 5.0


@SETTINGS
@given(s_in=st.floats(-14.0, -7.0).map(lambda e: f32(2.0 ** e)), ratio=st.floats(-1.0, 1.0),
       seed=st.integers(0, 2 ** 16))
def test_prelu_int16_close_to_float(s_in, ratio, seed):
    """Every int16 code and a slope per channel (int16, symmetric) against max(x, 0) +
    alpha min(x, 0), in output steps: each branch is one requantisation (half a step) of an
    exact int32 product, so within 0.5 + 2^-20 relative (the 31-bit multiplier) plus, for
    x < 0, the slope's own rounding |x| (s_a / 2) / s_out."""
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(-1.0, 1.0, 16).astype(np.float32)
    s_a = f32(np.abs(alpha).max() / 32767)
    a_q = np.round(alpha / s_a).astype(np.int16)
    s_out = f32(s_in * 2.0 ** ratio)
    x = CODES.reshape(-1, 16)
    p = kv.prepare_prelu(s_in, 0, s_a, 0, s_out, 0)
    got = kv.prelu(x, a_q, p, np.int16).astype(np.float64)
    xr = x * np.float64(s_in)
    want = np.clip(np.where(xr >= 0, xr, alpha * xr) / np.float64(s_out), -32768, 32767)
    bound = 0.5 + 1e-6 * np.abs(want) + np.where(xr < 0, np.abs(xr) * np.float64(s_a) / 2 / np.float64(s_out), 0)
    assert np.all(np.abs(got - want) <= bound + 1e-9)


def test_reshaped_sigmoid_keeps_its_int16_scale():
    """A sigmoid read through a reshape (a model's score output) shares its fixed int16 scale
    1/32768: calibrated where the sigmoid stays below 0.12 (a pose flag on photos without a
    person), an input reaching 0.9 comes out as the closed-form sigmoid, not clipped at the
    calibrated 0.12 by a reshape scaled from its calibrated range (the sigmoid's codes read
    at that scale)."""
    w = np.full((1, 1, 1, 4), 0.5, np.float32)
    t = {"x": Tensor("x", (1, 2, 2, 4), DType.F32), "c": Tensor("c", (1, 2, 2, 1), DType.F32),
         "s": Tensor("s", (1, 2, 2, 1), DType.F32), "out": Tensor("out", (1, 4), DType.F32),
         "w": Tensor("w", w.shape, DType.F32, w), "b": Tensor("b", (1,), DType.F32, np.zeros(1, np.float32))}
    nodes = (Node(Op.CONV2D, "c", ("x", "w", "b"), ("c",), ConvAttrs()), Node(Op.SIGMOID, "sig", ("c",), ("s",), NoAttrs()),
             Node(Op.RESHAPE, "r", ("s",), ("out",), ReshapeAttrs((1, 4))))
    g = Graph(nodes, t, ("x",), ("out",))
    rng = np.random.default_rng(0)
    calib = {"x": rng.uniform(-8.0, -1.0, (4, 1, 2, 2, 4)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = compile_graph(g, small_arch(16, 8, 8, 8, 8, "ws"), calib, sqnr=False,
                           options=replace(CompileOptions(), precision="int16"))[1]
    assert qg.tensors["out"].dtype is DType.I16 and qg.tensors["out"].quant.s == k16.OUT_SCALE_16
    x = np.linspace(-1.0, 3.0, 16, dtype=np.float32).reshape(1, 2, 2, 4)
    want = 1 / (1 + np.exp(-0.5 * x.astype(np.float64).sum(-1))).reshape(1, 4)
    assert want.max() > 0.9
    assert np.abs(run_dequantised(qg, {"x": x})["out"] - want).max() < 4 * k16.OUT_SCALE_16


def relu_branch_chain(leaky: bool = False) -> tuple[Graph, dict[str, np.ndarray]]:
    """The conv chain with a RELU6 the conv cannot absorb (its input also feeds a second 1x1
    conv, c3, whose output is a second graph output): x -> c1 -> h -> RELU6 -> c2 -> out, h -> c3 -> o2."""
    g, calib = hard_swish_chain()
    w3 = (np.random.default_rng(5).standard_normal((4, 1, 1, 16)) * 0.4).astype(np.float32)
    t = dict(g.tensors, w3=Tensor("w3", w3.shape, DType.F32, w3),
             b3=Tensor("b3", (4,), DType.F32, np.zeros(4, np.float32)), o2=Tensor("o2", (1, 6, 6, 4), DType.F32))
    act = Node(Op.LEAKY_RELU, "hs", ("h",), ("a",), LeakyReluAttrs(0.2)) if leaky else \
        Node(Op.CLAMP, "hs", ("h",), ("a",), Clamp(0.0, 6.0))
    nodes = (g.nodes[0], act, g.nodes[2],
             Node(Op.CONV2D, "c3", ("h", "w3", "b3"), ("o2",), ConvAttrs()))
    return Graph(nodes, t, g.inputs, ("out", "o2")), calib


@pytest.mark.parametrize("leaky", [False, True])
def test_relu_widens_with_its_conv_chain(leaky):
    """precision int16 widens a standalone RELU6 (LEAKY_RELU) with the convs around it (int8
    before: a table op has no int16 input): int16 in and out by requantise-and-clamp on the NPU, simulator =
    integer reference, and the ReLU branch's output gains over all-int8 what int16 activations
    give (> 5 dB)."""
    g, calib = relu_branch_chain(leaky)
    arch, feeds, prog, qg, q8 = _int16_and_int8(g, calib)
    hs = next(n for n in qg.nodes if n.name == "hs")
    assert qg.tensors[hs.inputs[0]].dtype is DType.I16 and qg.tensors[hs.outputs[0]].dtype is DType.I16
    if leaky:       # LiteRT's int16 LEAKY_RELU as a PRELU of slope 1
        assert hs.op is Op.PRELU and np.all(qg.tensors[hs.inputs[1]].data == 1)
    else:
        assert isinstance(hs.params, kr.Relu16Params) and hs.params.act_min == 0
    assert {layer.name: layer.target for layer in prog.layers}[hs.name] == "npu"
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds[:2])
    assert _sqnr(g, qg, feeds) > _sqnr(g, q8, feeds) + 5.0


@pytest.mark.parametrize("fn", ["exp", "abs"])
def test_unary_widens_with_its_conv_chain(fn):
    """precision int16 widens a standalone EXP / ABS (UNARY) with the convs around it (int8
    before: the UNARY tables had no int16 input): EXP by LiteRT's 513-anchor int16 table (LUT16),
    ABS as the int16 PRELU of slope -1, on the NPU, simulator = integer reference, and the
    branch's output gains over all-int8 (> 5 dB)."""
    g, calib = relu_branch_chain()
    nodes = tuple(Node(Op.UNARY, "hs", ("h",), ("a",), UnaryAttrs(fn)) if n.name == "hs" else n for n in g.nodes)
    g = Graph(nodes, g.tensors, g.inputs, g.outputs)
    arch, feeds, prog, qg, q8 = _int16_and_int8(g, calib)
    hs = next(n for n in qg.nodes if n.name == "hs")
    assert qg.tensors[hs.inputs[0]].dtype is DType.I16 and qg.tensors[hs.outputs[0]].dtype is DType.I16
    if fn == "exp":
        assert isinstance(hs.params, k16.Lut16Params) and hs.params.out_bytes == 2
    else:
        assert hs.op is Op.PRELU and qg.tensors[hs.inputs[1]].data.tolist() == [-1] * 16
    assert {layer.name: layer.target for layer in prog.layers}[hs.name] == "npu"
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds[:2])
    assert _sqnr(g, qg, feeds) > _sqnr(g, q8, feeds) + 5.0
