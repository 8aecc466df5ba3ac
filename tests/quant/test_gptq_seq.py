"""Sequential GPTQ (option gptq=sequential): the cross term X_q^T X_f against the float
kernel's own inputs, the re-fit against numpy's least squares on the augmented system, the
first layer of a chain as plain GPTQ, and on a two-layer chain the second layer's output
error on the calibration inputs (the float kernels' own, after the rounded first layer)
below plain GPTQ's; the option compiles to a program equal to the integer reference."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from npukit.codegen.context import CompileOptions
from npukit.errors import InputError
from npukit.ir.graph import Clamp, ConvAttrs, DType, FcAttrs, Graph, Node, Op, ReshapeAttrs, Tensor
from npukit.kernels.float_exec import run_float, run_node
from npukit.ptq import quantise
from npukit.quant.gptq import gptq_weights, hessian
from npukit.quant.gptq_seq import cross_gram, refit, sequential_subsets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gptq import LAYERS, _layer  # noqa: E402

F = DType.F32


@pytest.mark.parametrize("case", ["conv 3x3 pad stride 2", "grouped conv", "fully connected 3-D", "depthwise x2",
                                  "transposed conv"])
def test_cross_gram_is_that_of_the_float_kernels_inputs(case):
    """A^T B with A, B read off the float kernel: one-hot weights pick each tap of each input;
    cross_gram(x, x) is hessian's X^T X."""
    g, node, w, xs = _layer(*LAYERS[case][:4])
    ys = [x * 0.5 + np.roll(x, 1, axis=-1) for x in xs]
    got = cross_gram(node, w, xs, ys)
    np.testing.assert_allclose(cross_gram(node, w, xs, xs), hessian(node, w, xs), rtol=1e-5, atol=1e-3)
    depthwise = node.op is Op.CONV2D and node.attrs.depthwise
    taps = w.shape[1:3] if depthwise else w.shape[1:]
    groups = 1 if depthwise or node.op is Op.FULLY_CONNECTED else node.attrs.groups
    per = w.shape[0] // groups

    def cols(inputs, gi):
        out = []
        for k in range(int(np.prod(taps))):
            e = np.zeros_like(w)
            e[(0, *np.unravel_index(k, taps)) if depthwise else (gi * per, *np.unravel_index(k, taps))] = 1.0
            y = np.concatenate([run_node(node, [x, e]) for x in inputs]).reshape(-1, w.shape[-1] if depthwise
                                                                                  else run_node(node, [inputs[0], e]).shape[-1])
            out.append(y if depthwise else y[:, gi * per])
        return np.stack(out, axis=-1).astype(np.float64)
    for gi in range(groups):
        a, b = cols(xs, gi), cols(ys, gi)
        want = np.einsum("pck,pcl->ckl", a, b) if depthwise else a.T @ b
        np.testing.assert_allclose(got if depthwise or node.op is Op.FULLY_CONNECTED else got[gi], want,
                                   rtol=1e-4, atol=1e-3)


def test_refit_is_the_damped_least_squares_solution():
    """min ||X_q w' - X_f w||^2 + lam ||w' - w||^2 by numpy's lstsq on [X_q; sqrt(lam) I] w' =
    [X_f w; sqrt(lam) w], for a shared X^T X and one per row."""
    rng = np.random.default_rng(0)
    xf = rng.standard_normal((40, 6))
    xq = xf + 0.1 * rng.standard_normal((40, 6))
    rows = rng.standard_normal((3, 6))
    hq, c = xq.T @ xq, xq.T @ xf
    lam = 0.1 * np.mean(np.diag(hq))
    a = np.vstack([xq, np.sqrt(lam) * np.eye(6)])
    want = np.stack([np.linalg.lstsq(a, np.concatenate([xf @ r, np.sqrt(lam) * r]), rcond=None)[0] for r in rows])
    np.testing.assert_allclose(refit(rows, hq, c, 0.1), want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(refit(rows, np.stack([hq] * 3), np.stack([c] * 3), 0.1), want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(refit(rows, hq, hq, 0.1), rows, rtol=1e-9, atol=1e-12)    # X_q = X_f: w' = w


def _chain():
    """conv 3x3 + relu -> fully connected, correlated inputs."""
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((8, 3, 3, 4)).astype(np.float32)
    w2 = (rng.standard_normal((5, 5 * 5 * 8)) * 0.2).astype(np.float32)
    n1 = Node(Op.CONV2D, "c", ("x", "w1"), ("h",), ConvAttrs(act=Clamp(0.0, None)))
    n3 = Node(Op.RESHAPE, "f", ("h",), ("hf",), ReshapeAttrs((1, 200)))
    n4 = Node(Op.FULLY_CONNECTED, "fc", ("hf", "w2"), ("y",), FcAttrs())
    t = {"x": Tensor("x", (1, 7, 7, 4), F), "w1": Tensor("w1", w1.shape, F, w1), "h": Tensor("h", (1, 5, 5, 8), F),
         "hf": Tensor("hf", (1, 200), F), "w2": Tensor("w2", w2.shape, F, w2), "y": Tensor("y", (1, 5), F)}
    g = Graph((n1, n3, n4), t, ("x",), ("y",))
    base = rng.standard_normal((6, 1, 7, 7, 4))
    feeds = [{"x": (b + 0.8 * b.mean(axis=-1, keepdims=True) + 0.3).astype(np.float32)} for b in base]
    return g, feeds


def test_chain_second_layer_compensates_the_first():
    g, feeds = _chain()
    values = [run_float(g, f, keep_all=True) for f in feeds]
    seq = sequential_subsets(g, values, [range(len(values))])[0]
    plain = gptq_weights(g, values)
    np.testing.assert_array_equal(seq["w1"], plain["w1"])       # the first layer sees float inputs: plain GPTQ

    def err(weights):       # the output error on the calibration inputs, every layer at its rounded weights
        from npukit.quant.gptq import with_weights
        gq = with_weights(g, weights)
        return sum(float(np.sum((run_float(gq, f)["y"] - v["y"]).astype(np.float64) ** 2))
                   for f, v in zip(feeds, values))
    assert err(seq) < 0.8 * err(plain), (err(seq), err(plain))


def test_option_compiles_and_is_validated():
    g, feeds = _chain()
    calib = {"x": np.concatenate([f["x"] for f in feeds])}
    q = quantise(g, calib, "minmax", sqnr=False, options=CompileOptions(gptq="sequential"))
    assert set(q.scales.weights) == {"w1", "w2"}
    with pytest.raises(InputError, match=re.escape("auto | sequential | never")):
        CompileOptions(gptq="sometimes")
