"""Empirical bias correction: the measured shift is exactly E[(W_q - W) x] per output channel,
the corrected bias absorbs it, and the int8 output's mean error shrinks on a conv whose
weight rounding shifts every output channel the same way."""
from __future__ import annotations

import numpy as np

from npukit.codegen.context import CompileOptions
from npukit.ptq import quantise
from npukit.measure import quantize_inputs
from npukit.ir.graph import ConvAttrs, DType, Graph, Node, Op, Tensor
from npukit.quant.bias_correction import correct_biases, output_shift
from npukit.kernels.float_exec import run_float
from npukit.quant.conv_weights import weights_per_channel
from npukit.sim.reference import run_reference

RNG = np.random.default_rng(0)
F = DType.F32


def _conv(bias: bool = True) -> Graph:
    """A 1x1 conv over 64 channels of mean 2, weights 1 / 254 + a 127-step one per row: each
    rounds to 0 or 1 / 127 ... biased one way, so the rounding shifts every output's mean."""
    w = np.full((4, 1, 1, 64), 0.3 / 127, np.float32)
    w[:, 0, 0, 0] = 1.0                     # sets each row's scale to 1 / 127
    inputs = ("x", "w", "b") if bias else ("x", "w")
    t = [Tensor("x", (1, 4, 4, 64), F), Tensor("w", w.shape, F, w), Tensor("y", (1, 4, 4, 4), F)]
    t += [Tensor("b", (4,), F, np.zeros(4, np.float32))] if bias else []
    return Graph((Node(Op.CONV2D, "conv", inputs, ("y",), ConvAttrs()),), {x.name: x for x in t}, ("x",), ("y",))


def _feeds(n):
    return (RNG.standard_normal((n, 1, 4, 4, 64)) * 0.2 + 2.0).astype(np.float32)


def test_shift_is_the_weight_error_times_the_mean_input():
    g = _conv()
    xs = [f for f in _feeds(3)]
    w = g.tensors["w"].data
    q, s = weights_per_channel(w, 0)
    err = q * s[:, None, None, None] - w
    want = np.einsum("oc,c->o", err.reshape(4, 64), np.mean(np.concatenate(xs).reshape(-1, 64), axis=0))
    assert np.allclose(output_shift(g, g.nodes[0], xs), want, rtol=1e-4, atol=1e-7)


def test_corrected_int8_output_has_a_smaller_mean_error():
    for bias in (True, False):
        g = _conv(bias)
        calib, test = {"x": _feeds(8)}, _feeds(4)

        def mean_error(options):
            qg = quantise(g, calib, sqnr=False, options=options).graph
            q, errs = qg.tensors["y"].quant, []
            for x in test:
                got = (run_reference(qg, quantize_inputs(qg, {"x": x}))["y"].astype(np.float64) - q.zp) * q.s
                errs.append(np.mean(got - run_float(g, {"x": x})["y"], axis=(0, 1, 2)))
            return np.abs(np.mean(errs, axis=0))

        base, fixed = mean_error(CompileOptions()), mean_error(CompileOptions(bias_correction="auto"))
        assert np.all(base > 0.05) and np.all(fixed < 0.2 * base), (base, fixed)


def test_a_layer_without_bias_gets_one():
    g = _conv(bias=False)
    c = correct_biases(g, [{"x": _feeds(1)[0]}])
    assert len(c.nodes[0].inputs) == 3 and c.tensors[c.nodes[0].inputs[2]].data.shape == (4,)
