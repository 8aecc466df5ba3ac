"""EXP and LOG of int16 activations (TFLite's 16x8 scheme: LiteRT's elementwise.cc and exp.cc
build a 513-entry int16 table with LUTPopulate<int16_t> and read it with linear interpolation):
generated single-operator 16x8 TFLite models compiled for small SRAMs run on the NPU alone as
LUT16, and equal LiteRT's reference interpreter and the integer reference on every int16 code;
the table against the float function. ABS of int16 (LiteRT: |x - zp| requantised) as the int16
PRELU ELEMENTWISE with a slope of -1, equal to LiteRT; SQRT of int16 is refused by the frontend."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from npukit.errors import UnsupportedOpError
from npukit.isa import instructions as I
from npukit.kernels import kernels_vpu16 as k16
from npukit.kernels import kernels_vpu_unary as ku
from npukit.testing.tflite_builder import build_single_op

from test_sim_vpu16 import SETTINGS, check, codes, compile_bytes, q
from test_sim_vs_reference import small_arch

ALL = np.arange(-32768, 32768, dtype=np.int16).reshape(1, -1)


@SETTINGS
@given(op=st.sampled_from(["EXP", "LOG"]), shape=st.sampled_from([(1, 5, 7, 6), (3, 40), (1, 2999)]),
       s_in=st.floats(1e-5, 2e-3), s_out=st.floats(1e-5, 1e-1), abuf=st.sampled_from([2, 4]),
       seed=st.integers(0, 2 ** 16))
@example(op="LOG", shape=(1, 2999), s_in=1e-4, s_out=3e-4, abuf=2, seed=1)
def test_unary_16x8_sim(tmp_path, op, shape, s_in, s_out, abuf, seed):
    x = codes(np.random.default_rng(seed), shape)
    model = build_single_op(op, [q("x", shape, s_in)], [q("y", shape, s_out)])
    prog = compile_bytes(tmp_path, model, small_arch(abuf, 2, 1, 8, 8, "ws"))
    luts = [i for i in prog.program.instructions if isinstance(i, I.Lut16)]
    assert luts and all(i.out_bytes == 2 for i in luts)
    check(prog, model, [x])


@pytest.mark.parametrize("op, s_in, s_out", [("EXP", 3e-4, 1e-3), ("LOG", 3e-4, 3e-4), ("EXP", 1e-2, 1e-3)])
def test_unary_16x8_every_code(tmp_path, op, s_in, s_out):
    """All 65536 int16 codes through the NPU equal LiteRT's int16 kernel; also an EXP whose
    input range passes ln(FLT_MAX) (its top anchors are expf's +inf through LiteRT's float
    arithmetic: the outputs there read below 32767, in LiteRT as on the NPU)."""
    model = build_single_op(op, [q("x", ALL.shape, s_in)], [q("y", ALL.shape, s_out)])
    prog = compile_bytes(tmp_path, model, small_arch(4, 2, 1, 8, 8, "ws"))
    check(prog, model, [ALL])


@pytest.mark.parametrize("fn, s_in, s_out", [("exp", 1e-4, 1e-4), ("exp", 1e-4, 1e-3), ("exp", 1e-3, 2e-3),
                                              ("log", 3e-4, 2e-4), ("log", 1e-3, 2e-4)])
def test_unary_lut16_close_to_float(fn, s_in, s_out):
    """Every code against the float function in output steps: two steps (the anchors' rounding,
    the 7-bit interpolation, LiteRT's 65536 / 65535 output scaling), the chord's error over one
    anchor step h = 128 s_in, h^2 / 8 max|f''|, and up to one input code of anchor drift
    (LiteRT places anchor i at code -32768 + 65535 i / 512, the lookup reads it at
    -32768 + 128 i), max|f'| s_in. So LiteRT's 513 anchors are not within one step of EXP's
    float result where e^x s_in / s_out nears a step. Left out: EXP's last anchor step below
    saturation (the chord runs to the clamped anchor) and LOG below 2h."""
    p = ku.unary_lut16(fn, s_in, 0, s_out, 0, 2)
    y = k16.lut16(ALL.ravel(), p).astype(np.float64)
    x = ALL.ravel().astype(np.float64) * np.float32(s_in)
    h = 128 * float(np.float32(s_in))
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.clip((np.exp(x) if fn == "exp" else np.log(x)) / np.float32(s_out), -32768, 32767)
        curve = np.exp(x + h) if fn == "exp" else 1.0 / (x - h) ** 2        # max |f''| over the step
        slope = np.exp(x + h) if fn == "exp" else 1.0 / (x - h)             # max |f'|
    keep = np.exp(x + h) / np.float32(s_out) < 32767 if fn == "exp" else x > 2 * h
    assert keep.mean() > 0.4
    bound = 2.0 + (h * h / 8 * curve + slope * float(np.float32(s_in))) / np.float32(s_out)
    assert np.all((np.abs(y - want) <= bound)[keep])


@SETTINGS
@given(shape=st.sampled_from([(1, 5, 7, 6), (3, 40), (1, 2999)]), s_in=st.floats(1e-5, 1e-2),
       ratio=st.floats(-3.0, 3.0), seed=st.integers(0, 2 ** 16))
@example(shape=(3, 40), s_in=1e-3, ratio=0.0, seed=0)      # equal scales: LiteRT's plain |x| path
def test_abs_16x8_sim(tmp_path, shape, s_in, ratio, seed):
    x = codes(np.random.default_rng(seed), shape)
    x.flat[0] = -32768                                       # |-32768| saturates to 32767
    model = build_single_op("ABS", [q("x", shape, s_in)], [q("y", shape, s_in * 2.0 ** ratio)])
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    elts = [i for i in prog.program.instructions if isinstance(i, I.Elementwise)]
    assert elts and all(i.elem == 2 and i.kind == I.Eltwise.PRELU for i in elts)
    check(prog, model, [x])


def test_unary_16x8_without_table_refused(tmp_path):
    model = build_single_op("SQRT", [q("x", (1, 8), 1e-3)], [q("y", (1, 8), 1e-3)])
    with pytest.raises(UnsupportedOpError, match="SQRT are not supported"):
        compile_bytes(tmp_path, model, small_arch(4, 2, 1, 8, 8, "ws"))
