"""Cross-layer equalisation: the float function is unchanged (1e-5 relative), the paired
channels' weight ranges become equal, upper clips (ReLU6) are left alone, and the int8 output
of a pair with one dominant channel gets closer to float."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from npukit.ptq import quantise
from npukit.measure import quantize_inputs
from npukit.codegen.context import CompileOptions
from npukit.ir.graph import Clamp, ConvAttrs, DType, Graph, Node, Op, Tensor
from npukit.opt.equalize import equalize, pairs
from npukit.quant.calib_warnings import CalibrationWarning
from npukit.kernels.float_exec import run_float
from npukit.sim.reference import run_reference

RNG = np.random.default_rng(0)
F = DType.F32


def _chain(act1=Clamp(0.0, None), act2=None, c=8) -> Graph:
    """x -> conv 1x1 (c) -> act1 -> depthwise 3x3 -> act2 -> conv 1x1 (c); conv1's channel 2 200x."""
    w1 = RNG.standard_normal((c, 1, 1, 4)).astype(np.float32)
    w1[2] *= 200.0
    wd = RNG.standard_normal((1, 3, 3, c)).astype(np.float32)
    w2 = RNG.standard_normal((c, 1, 1, c)).astype(np.float32)
    t = [Tensor("x", (1, 8, 8, 4), F), Tensor("w1", w1.shape, F, w1), Tensor("b1", (c,), F, RNG.standard_normal(c).astype(np.float32)),
         Tensor("a", (1, 8, 8, c), F), Tensor("wd", wd.shape, F, wd), Tensor("bd", (c,), F, np.zeros(c, np.float32)),
         Tensor("d", (1, 8, 8, c), F), Tensor("w2", w2.shape, F, w2), Tensor("y", (1, 8, 8, c), F)]
    nodes = [Node(Op.CONV2D, "c1", ("x", "w1", "b1"), ("a",), ConvAttrs(act=act1)),
             Node(Op.CONV2D, "dw", ("a", "wd", "bd"), ("d",), ConvAttrs(pads=(1, 1, 1, 1), depthwise=True, act=act2)),
             Node(Op.CONV2D, "c2", ("d", "w2"), ("y",), ConvAttrs())]
    return Graph(tuple(nodes), {x.name: x for x in t}, ("x",), ("y",))


def test_float_outputs_are_unchanged_and_ranges_equalised():
    g = _chain()
    assert [(a.name, b.name) for a, b in pairs(g)] == [("c1", "dw"), ("dw", "c2")]
    e = equalize(g)
    x = {"x": RNG.standard_normal((1, 8, 8, 4)).astype(np.float32)}
    want, got = run_float(g, x)["y"], run_float(e, x)["y"]
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    r1 = np.abs(e.tensors["wd"].data).max(axis=(0, 1, 2))
    r2 = np.abs(e.tensors["w2"].data).max(axis=(0, 1, 2))
    assert np.allclose(r1, r2, rtol=1e-3)        # the last pair is equalised after the sweeps
    w1 = np.abs(e.tensors["w1"].data).reshape(8, -1).max(axis=1)
    assert w1.max() / np.median(w1) < 20         # the 200x channel is no longer one


def test_relu6_between_is_left_alone():
    g = _chain(act1=Clamp(0.0, 6.0), act2=Clamp(0.0, 6.0))
    assert pairs(g) == []
    assert equalize(g) is g


def test_int8_output_of_an_outlier_channel_chain_gets_closer_to_float():
    """The 200x channel no longer sets the per-tensor scales of 'a' and 'd' alone."""
    g = _chain(act2=Clamp(0.0, None))
    calib = {"x": RNG.standard_normal((8, 1, 8, 8, 4)).astype(np.float32)}
    test = [{"x": RNG.standard_normal((1, 8, 8, 4)).astype(np.float32)} for _ in range(4)]

    def error(options):
        qg = quantise(g, calib, sqnr=False, options=options).graph
        errs = []
        for feed in test:
            want = run_float(g, feed)["y"]
            q = qg.tensors["y"].quant
            got = (run_reference(qg, quantize_inputs(qg, feed))["y"].astype(np.float64) - q.zp) * q.s
            rms = np.sqrt(np.mean((got - want) ** 2, axis=(0, 1, 2)) / np.mean(want ** 2, axis=(0, 1, 2)))
            errs.append(np.mean(rms))       # each output channel's relative error, averaged
        return float(np.mean(errs))

    with pytest.warns(CalibrationWarning, match="channels exceed 20x"):
        base = error(CompileOptions())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        assert error(CompileOptions(equalize="auto")) < 0.9 * base
