"""GPTQ rounding of int8 weights (option gptq): a hand-worked three-column case; the column
updates equal the paper's OBQ form (inverse Hessian, one column eliminated at a time)
computed directly; on generated conv / depthwise / grouped / fully connected layers the
output error on the calibration inputs (the float kernels' own W x) is below round-to-nearest's
and the scales are round-to-nearest's; the compiled program equals the integer reference."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from npukit.api import CompiledModel
from npukit.codegen.context import CompileOptions
from npukit.codegen.options import parse_option
from npukit.compiler import compile_graph
from npukit.ptq import quantise
from npukit.errors import InputError
from npukit.ir.graph import ConvAttrs, DType, FcAttrs, Graph, Node, Op, Tensor
from npukit.kernels.float_exec import run_node
from npukit.quant.bias_correction import output_shift
from npukit.quant.gptq import gptq_rows, gptq_subsets, gptq_weights, hessian, rounded_weights, with_weights
from npukit.quant.conv_weights import weights_per_channel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

F = DType.F32


def test_hand_worked_three_columns():
    """H = [[1, .5, 0], [.5, 1, 0], [0, 0, 1]], w = [0.4, 0.35, 127], scale 1 (no damping).
    Column 0 rounds to 0 (error -0.4); the best update of the rest for it is
    -(H_FF)^-1 H_F0 (-0.4) = [0.2, 0]: column 1 becomes 0.55 and rounds to 1, where
    round-to-nearest gives 0. Cost (q - w) H (q - w)^T: 0.3225 against 0.4225."""
    h = np.array([[1, .5, 0], [.5, 1, 0], [0, 0, 1]])
    w = np.array([[0.4, 0.35, 127.0]])
    codes = gptq_rows(w, np.ones(1), h, damp=0.0)
    assert codes.tolist() == [[0, 1, 127]]
    for q, cost in ((codes[0], 0.3225), (np.round(w[0]), 0.4225)):
        d = q - w[0]
        assert d @ h @ d == pytest.approx(cost)


def _obq(w: np.ndarray, s: np.ndarray, h: np.ndarray, damp: float) -> np.ndarray:
    """The GPTQ column loop in the paper's OBQ form: w_F -= (w_i - q_i) / [H_F^-1]_ii
    [H_F^-1]_{:, i}, then column i eliminated from H_F^-1 (Gaussian elimination)."""
    w = w.astype(np.float64).copy()
    hd = h + damp * np.mean(np.diag(h)) * np.eye(len(h))
    codes = np.zeros(w.shape, np.int64)
    for r in range(w.shape[0]):
        hinv = np.linalg.inv(hd)
        anchor = int(np.argmax(np.abs(w[r])))
        for i in range(w.shape[1]):
            q = np.sign(w[r, i]) * 127 if i == anchor else np.clip(np.round(w[r, i] / s[r]), -127, 127)
            codes[r, i] = q
            e = (w[r, i] - q * s[r]) / hinv[i, i]
            w[r, i:] -= e * hinv[i, i:]
            hinv = hinv - np.outer(hinv[:, i], hinv[i, :]) / hinv[i, i]
    return codes


def test_column_updates_equal_the_inverse_hessian_form():
    rng = np.random.default_rng(1)
    k = 80                                # > 64: the inverse factor is built by halves
    x = rng.standard_normal((400, k)) @ rng.standard_normal((k, k))
    h = x.T @ x
    w = rng.standard_normal((5, k))
    _, s = weights_per_channel(w.astype(np.float32), 0)
    s = s.astype(np.float64) * 4          # coarse codes: many columns move
    want = _obq(w, s, h, 0.01)
    assert np.array_equal(gptq_rows(w, s, h), want)
    assert np.array_equal(gptq_rows(w, s, h, block=7), want)     # lazy batch updates change nothing
    per_row = np.broadcast_to(h, (5, k, k))
    assert np.array_equal(gptq_rows(w, s, per_row, block=30), want)
    assert not np.array_equal(want, np.clip(np.round(w / s[:, None]), -127, 127))


def _layer(op: Op, x_shape, w_shape, attrs):
    rng = np.random.default_rng(2)
    w = rng.standard_normal(w_shape).astype(np.float32)
    node = Node(op, "l", ("x", "w"), ("y",), attrs)
    g = Graph((node,), {"x": Tensor("x", x_shape, F), "w": Tensor("w", w_shape, F, w),
                        "y": Tensor("y", (1,), F)}, ("x",), ("y",))
    # correlated inputs, as real activations are: a component shared across channels and,
    # along the rows, a running sum (neighbouring taps alike)
    base = rng.standard_normal((3,) + tuple(x_shape))
    xs = [(b + 0.8 * b.mean(axis=-1, keepdims=True) + 0.5 * np.cumsum(b, axis=1) + 0.3).astype(np.float32)
          for b in base]
    return g, node, w, xs


LAYERS = {      # op, input, weights, attrs, GPTQ's output error at most this x round-to-nearest's
    "conv 3x3 pad stride 2": (Op.CONV2D, (1, 9, 9, 6), (8, 3, 3, 6), ConvAttrs(stride=(2, 2), pads=(1, 1, 1, 1)), 0.8),
    "conv 3x3 dilated": (Op.CONV2D, (1, 10, 10, 4), (6, 3, 3, 4), ConvAttrs(dilation=(2, 2)), 0.8),
    "grouped conv": (Op.CONV2D, (1, 8, 8, 6), (6, 3, 3, 2), ConvAttrs(pads=(1, 1, 1, 1), groups=3), 0.9),
    "fully connected 3-D": (Op.FULLY_CONNECTED, (1, 7, 24), (10, 24), FcAttrs(), 0.7),
    # nine taps per row, and (transposed) three of four input rows zero: little to trade
    "transposed conv": (Op.CONV2D, (1, 5, 5, 4), (4, 3, 3, 4), ConvAttrs(pads=(2, 2, 2, 2), input_dilation=(2, 2)),
                        0.99),
    "depthwise x2": (Op.CONV2D, (1, 8, 8, 4), (1, 3, 3, 8), ConvAttrs(pads=(1, 1, 1, 1), depthwise=True), 0.99),
}


@pytest.mark.parametrize("case", LAYERS)
def test_hessian_is_that_of_the_float_kernels_inputs(case):
    """H = X^T X with X read off the float kernel itself: one-hot weights pick each tap."""
    g, node, w, xs = _layer(*LAYERS[case][:4])
    h = hessian(node, w, xs)
    depthwise = node.op is Op.CONV2D and node.attrs.depthwise
    taps = w.shape[1:3] if depthwise else w.shape[1:]
    groups = 1 if depthwise or node.op is Op.FULLY_CONNECTED else node.attrs.groups
    per = w.shape[0] // groups
    for gi in range(groups):
        cols = []
        for k in range(int(np.prod(taps))):
            e = np.zeros_like(w)
            if depthwise:
                e[(0, *np.unravel_index(k, taps))] = 1.0         # every channel's tap k
            else:
                e[(gi * per, *np.unravel_index(k, taps))] = 1.0
            out = np.concatenate([run_node(node, [x, e]) for x in xs])
            cols.append(out.reshape(-1, out.shape[-1]) if depthwise else out.reshape(-1, out.shape[-1])[:, gi * per])
        x = np.stack(cols, axis=-1).astype(np.float64)     # [P, C, taps] (depthwise) or [P, K]
        want = np.einsum("pck,pcl->ckl", x, x) if depthwise else x.T @ x
        np.testing.assert_allclose(h if depthwise or node.op is Op.FULLY_CONNECTED else h[gi], want,
                                   rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", LAYERS)
def test_output_error_on_calibration_data_is_below_round_to_nearest(case):
    g, node, w, xs = _layer(*LAYERS[case][:4])
    depthwise = node.op is Op.CONV2D and node.attrs.depthwise
    axis = 3 if depthwise else 0
    q, s = weights_per_channel(w, axis)
    shape = [1] * w.ndim
    shape[axis] = -1
    rtn = q.astype(np.float32) * s.reshape(shape)
    got = gptq_weights(g, [{"x": x} for x in xs])["w"]
    assert np.array_equal(got, rounded_weights(node, w, xs))
    q2, s2 = weights_per_channel(got, axis)
    assert np.array_equal(s2, s)                                   # the scales are round-to-nearest's
    assert np.array_equal(q2.astype(np.float32) * s.reshape(shape), got)    # got is codes x scales
    assert not np.array_equal(q2, q)

    def err(wq):
        return np.sqrt(sum(np.sum((run_node(node, [x, wq]) - run_node(node, [x, w])).astype(np.float64) ** 2)
                           for x in xs))
    assert err(got) < LAYERS[case][4] * err(rtn), (err(got), err(rtn))


def test_bias_correction_after_gptq_measures_against_the_float_weights():
    g, node, w, xs = _layer(*LAYERS["conv 3x3 pad stride 2"][:4])
    rounded = with_weights(g, gptq_weights(g, [{"x": x} for x in xs]))
    err = rounded.tensors["w"].data - w
    want = np.mean(np.concatenate([run_node(node, [x, err]).reshape(-1, 8) for x in xs]), axis=0)
    assert np.allclose(output_shift(rounded, node, xs, reference=g), want, rtol=1e-4, atol=1e-6)
    assert np.allclose(output_shift(rounded, node, xs), 0.0)      # its own weights: nothing to correct


def _net() -> Graph:
    """x -> conv 3x3 relu -> depthwise 3x3 -> conv 1x1 -> mean-free FC head."""
    rng = np.random.default_rng(3)
    shapes = {"w1": (8, 3, 3, 3), "wd": (1, 3, 3, 8), "w2": (6, 1, 1, 8), "wf": (4, 6)}
    t = [Tensor(n, s, F, rng.standard_normal(s).astype(np.float32)) for n, s in shapes.items()]
    t += [Tensor("x", (1, 6, 6, 3), F), Tensor("a", (1, 6, 6, 8), F), Tensor("d", (1, 6, 6, 8), F),
          Tensor("c", (1, 6, 6, 6), F), Tensor("y", (1, 6, 6, 4), F),
          Tensor("b1", (8,), F, rng.standard_normal(8).astype(np.float32))]
    pad = (1, 1, 1, 1)
    nodes = (Node(Op.CONV2D, "c1", ("x", "w1", "b1"), ("a",), ConvAttrs(pads=pad, act=None)),
             Node(Op.CONV2D, "dw", ("a", "wd"), ("d",), ConvAttrs(pads=pad, depthwise=True)),
             Node(Op.CONV2D, "c2", ("d", "w2"), ("c",), ConvAttrs()),
             Node(Op.FULLY_CONNECTED, "fc", ("c", "wf"), ("y",), FcAttrs()))
    return Graph(nodes, {x.name: x for x in t}, ("x",), ("y",))


@pytest.mark.parametrize("bias_correction", ["never", "auto"])
def test_compiled_program_equals_the_integer_reference(bias_correction):
    g = _net()
    rng = np.random.default_rng(4)
    calib = {"x": rng.standard_normal((6, 1, 6, 6, 3)).astype(np.float32)}
    options = CompileOptions(gptq="auto", bias_correction=bias_correction, timed_candidates=1)
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, options=options, sqnr=False)
        plain = quantise(g, calib, sqnr=False, options=CompileOptions(bias_correction=bias_correction)).graph
    for name in ("w1", "wd", "w2", "wf"):     # other codes, the same scales
        assert qg.tensors[name].quant == plain.tensors[name].quant
        assert not np.array_equal(qg.tensors[name].data, plain.tensors[name].data)
    feeds = [{"x": rng.standard_normal((1, 6, 6, 3)).astype(np.float32)} for _ in range(2)]
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds)


def test_scales_carry_the_rounded_weights_to_another_compile():
    """A compile with `scales` (another input shape of the same model) gets GPTQ's codes, not
    round-to-nearest's, without calibration data."""
    g = _net()
    rng = np.random.default_rng(5)
    calib = {"x": rng.standard_normal((4, 1, 6, 6, 3)).astype(np.float32)}
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    options = CompileOptions(gptq="auto", timed_candidates=1)
    chose: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, options=options, sqnr=False, chose=chose)
        again, qg2, _ = compile_graph(g, arch, options=options, sqnr=False, scales=chose[0])
    assert set(chose[0].weights) == {"w1", "wd", "w2", "wf"}
    assert again.instructions == prog.instructions and [r.image for r in again.regions] == [r.image for r in prog.regions]
    for name in chose[0].weights:
        assert np.array_equal(qg2.tensors[name].data, qg.tensors[name].data)


def test_option_is_validated():
    assert CompileOptions(gptq="auto").gptq == "auto"
    with pytest.raises(InputError, match="option gptq=.sometimes. is not one of auto | sequential | never"):
        CompileOptions(gptq="sometimes")
    assert parse_option(CompileOptions, "gptq=auto") == ("gptq", "auto")


@pytest.mark.parametrize("case", ["conv 3x3 pad stride 2", "fully connected 3-D", "depthwise x2"])
def test_subsets_round_as_gptq_on_those_samples_alone(case):
    """precision auto's held-out folds: each subset's rounding is GPTQ's on its samples alone."""
    g, _, _, xs = _layer(*LAYERS[case][:4])
    values = [{"x": x} for x in xs]
    subsets = [range(3), [1, 2], [0]]
    for got, subset in zip(gptq_subsets(g, values, subsets), subsets):
        np.testing.assert_array_equal(got["w"], gptq_weights(g, [values[i] for i in subset])["w"])
