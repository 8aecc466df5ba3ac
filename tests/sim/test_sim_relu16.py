"""RELU / RELU6 of int16 activations (TFLite's 16x8 scheme, reference_ops::ReluX: requantise
into the output scale, clamp to the quantised bounds): generated single-operator 16x8 TFLite
models compiled for small SRAMs run on the NPU alone, as the requantising int16 1x1 DWCONV,
and equal LiteRT's reference interpreter and the integer reference; the DMA moves 2 bytes per
element; RELU_N1_TO_1 (which LiteRT refuses on int16) against the float clamp. LEAKY_RELU of
int16 likewise, as the int16 PRELU ELEMENTWISE."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import example, given
from hypothesis import strategies as st

from npukit.arch import load_arch
from npukit.cost.timing import Counts, _Model
from npukit.ir.graph import Clamp
from npukit.isa import instructions as I
from npukit.kernels import kernels_relu16 as kr
from npukit.testing.tflite_builder import build_single_op

from test_sim_vpu16 import SETTINGS, check, codes, compile_bytes, q
from test_sim_vs_reference import small_arch


@SETTINGS
@given(op=st.sampled_from(["RELU", "RELU6"]), shape=st.sampled_from([(1, 5, 7, 6), (3, 40), (1, 2999)]),
       s_in=st.floats(1e-5, 1e-2), ratio=st.floats(-3.0, 3.0), abuf=st.sampled_from([2, 4]), seed=st.integers(0, 2 ** 16))
@example(op="RELU", shape=(1, 2999), s_in=2.0 ** -7, ratio=1.25, abuf=2, seed=3)    # float32 s_in / s_out matters
def test_relu_16x8_sim(tmp_path, op, shape, s_in, ratio, abuf, seed):
    x = codes(np.random.default_rng(seed), shape)
    model = build_single_op(op, [q("x", shape, s_in)], [q("y", shape, s_in * 2.0 ** ratio)])
    prog = compile_bytes(tmp_path, model, small_arch(abuf, 1, 1, 8, 8, "ws"))
    dw = [i for i in prog.program.instructions if isinstance(i, I.DwConv)]
    assert dw and all((i.in_bytes, i.out_bytes, i.mode) == (2, 2, 0) for i in dw)
    moved = [i for i in prog.program.instructions if isinstance(i, I.Dma) and I.WBUF not in (i.src_space, i.dst_space)]
    assert sum(int(np.prod(d.shape)) * d.elem for d in moved) == 2 * x.nbytes      # in and out, 2 B each
    check(prog, model, [x])


def test_relu16_charges_twice_the_bytes(tmp_path):
    """The int16 DWCONV of a RELU reads and writes twice the ABUF bytes of the same int8
    instruction, in two passes of its int8 lanes."""
    x = codes(np.random.default_rng(1), (1, 8, 8, 16))
    model = build_single_op("RELU6", [q("x", x.shape, 1e-3)], [q("y", x.shape, 5e-4)])
    arch = load_arch("npu-s")
    prog = compile_bytes(tmp_path, model, arch)
    dw = next(i for i in prog.program.instructions if isinstance(i, I.DwConv))
    model_t = _Model(prog.program, arch)
    c16, c8 = Counts(), Counts()
    t16, t8 = model_t.latency(dw, c16), model_t.latency(replace(dw, in_bytes=1, out_bytes=1), c8)
    assert t16 > t8 > 0 and c16.sram_bytes[I.ABUF] == 2 * c8.sram_bytes[I.ABUF] > 0


@SETTINGS
@given(alpha=st.floats(-2.0, 2.0), shape=st.sampled_from([(1, 5, 7, 6), (3, 40)]), s_in=st.floats(1e-5, 1e-2),
       ratio=st.floats(-3.0, 3.0), seed=st.integers(0, 2 ** 16))
def test_leaky_relu_16x8_sim(tmp_path, alpha, shape, s_in, ratio, seed):
    """LEAKY_RELU of int16 (negative alphas too) as the int16 PRELU ELEMENTWISE with a slope of
    +-1 per channel: equal to LiteRT's QuantizeLeakyRelu<int16_t>."""
    x = codes(np.random.default_rng(seed), shape)
    opts = tfl.LeakyReluOptionsT()
    opts.alpha = alpha
    model = build_single_op("LEAKY_RELU", [q("x", shape, s_in)], [q("y", shape, s_in * 2.0 ** ratio)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    elts = [i for i in prog.program.instructions if isinstance(i, I.Elementwise)]
    assert elts and all(i.elem == 2 and i.kind == I.Eltwise.PRELU for i in elts)
    check(prog, model, [x])


@SETTINGS
@given(lo_hi=st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (0.0, None), (0.0, 6.0)]),
       s_in=st.floats(-14.0, -5.0).map(lambda e: float(np.float32(2.0 ** e))), ratio=st.floats(-2.0, 2.0))
def test_relu16_close_to_float(lo_hi, s_in, ratio):
    """Every int16 code against clip(x, lo, hi) in output steps: one requantisation (half a step,
    plus the 31-bit multiplier's 2^-30 relative), the bounds themselves rounded to a code; a
    right shift rounds twice (the doubling high product to an integer, then the shift: half a
    step before the shift more, x = 1 at a ratio of 1/4 gives 1)."""
    s_out = float(np.float32(s_in * 2.0 ** ratio))
    x = np.arange(-32768, 32768, dtype=np.int16)
    p = kr.prepare_relu16(s_in, 0, s_out, 0, Clamp(*lo_hi))
    got = kr.relu16(x, p).astype(np.float64)
    lo, hi = lo_hi
    want = np.clip(x * s_in, lo, np.inf if hi is None else hi) / s_out
    want = np.clip(want, -32768, 32767)
    assert np.all(np.abs(got - want) <= 0.5 + 0.5 * 2.0 ** min(p.shift, 0) + 1e-6 * np.abs(want) + 1e-9)
