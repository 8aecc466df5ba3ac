"""The integer LSTM kernel (TFLite's 8x8_16 path) pinned bit for bit to LiteRT's
UNIDIRECTIONAL_SEQUENCE_LSTM (BUILTIN_REF) on random single-operator models: outputs of every
step and the final hidden and cell states, from random initial states; the plain cell and its
CIFG, peephole, layer-norm and projection variants, alone and combined."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.errors import UnsupportedOpError
from npukit.kernels import fixedpoint16 as fp16
from npukit.kernels.kernels_lstm import LstmQuant, cell_scale, lstm_sequence, prepare_lstm
from npukit.testing.lstm_models import random_lstm, run_lstm_reference

CASES = [  # batch, steps, n_input, n_cell, cell_exp, cell_clip, time_major
    (1, 1, 3, 4, -11, 0.0, False),
    (2, 7, 5, 8, -12, 0.0, False),
    (3, 4, 16, 12, -9, 2.0, False),
    (1, 20, 8, 16, -15, 0.0, False),
    (2, 9, 3, 5, -13, 0.5, True),
    (4, 3, 10, 7, -10, 0.0, True),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("batch,steps,n_input,n_cell,cell_exp,clip,time_major", CASES)
def test_lstm_equals_litert(seed, batch, steps, n_input, n_cell, cell_exp, clip, time_major):
    rng = np.random.default_rng(seed * 100 + n_cell)
    case = random_lstm(rng, batch, steps, n_input, n_cell, cell_exp, clip, time_major)
    x = rng.integers(-128, 128, case.input_shape).astype(np.int8)
    h0 = rng.integers(-128, 128, (batch, n_cell)).astype(np.int8)
    c0 = rng.integers(-32768, 32768, (batch, n_cell)).astype(np.int16)
    ref_out, ref_h, ref_c = run_lstm_reference(case, x, h0, c0)
    p = case.prepare()
    xb = x.transpose(1, 0, 2) if time_major else x
    out, h, c = lstm_sequence(xb, h0, c0, case.w_input, case.w_recurrent, p)
    np.testing.assert_array_equal(out.transpose(1, 0, 2) if time_major else out, ref_out)
    np.testing.assert_array_equal(h, ref_h)
    np.testing.assert_array_equal(c, ref_c)
    assert ((ref_out > -128) & (ref_out < 127)).mean() > 0.25   # not only saturated outputs


VARIANTS = [  # cifg, peephole, norm, n_output, proj_clip, cell_clip, time_major
    (True, False, False, 0, 0.0, 0.0, False),
    (False, True, False, 0, 0.0, 0.0, False),
    (False, False, True, 0, 0.0, 0.0, False),
    (False, False, False, 6, 0.0, 0.0, False),
    (False, False, False, 10, 0.3, 1.0, True),
    (True, True, True, 0, 0.0, 0.5, False),
    (False, True, True, 8, 0.2, 0.0, True),     # peephole with projection: LiteRT needs n_output = n_cell
    (True, True, False, 0, 0.0, 0.0, True),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cifg,peephole,norm,n_output,proj_clip,clip,time_major", VARIANTS)
def test_lstm_variants_equal_litert(seed, cifg, peephole, norm, n_output, proj_clip, clip, time_major):
    batch, steps, n_input, n_cell = 2, 6, 5, 8
    rng = np.random.default_rng(seed * 1000 + 8 * cifg + 4 * peephole + 2 * norm + n_output)
    case = random_lstm(rng, batch, steps, n_input, n_cell, -12, clip, time_major, cifg, peephole, norm,
                       n_output, proj_clip)
    n_out = n_output or n_cell
    x = rng.integers(-128, 128, case.input_shape).astype(np.int8)
    h0 = rng.integers(-128, 128, (batch, n_out)).astype(np.int8)
    c0 = rng.integers(-32768, 32768, (batch, n_cell)).astype(np.int16)
    ref_out, ref_h, ref_c = run_lstm_reference(case, x, h0, c0)
    xb = x.transpose(1, 0, 2) if time_major else x
    out, h, c = lstm_sequence(xb, h0, c0, case.w_input, case.w_recurrent, case.prepare())
    np.testing.assert_array_equal(out.transpose(1, 0, 2) if time_major else out, ref_out)
    np.testing.assert_array_equal(h, ref_h.reshape(h.shape))
    np.testing.assert_array_equal(c, ref_c)
    assert ((ref_out > -128) & (ref_out < 127)).mean() > 0.25   # not only saturated outputs
    if proj_clip:
        assert np.abs(ref_out).max() <= int(proj_clip / case.quant.state_scale)


@pytest.mark.parametrize("integer_bits", [0, 3, 4, 6])
def test_int16_logistic_tanh_close_to_float_on_every_code(integer_bits):
    """gemmlowp's int16 logistic / tanh over all 65536 raws stay within 2^-11 of the functions."""
    raw = np.arange(-32768, 32768, dtype=np.int64)
    x = raw / 2.0 ** (15 - integer_bits)
    sig = fp16.logistic16(raw, integer_bits) / 32768
    th = fp16.tanh16(raw, integer_bits) / 32768
    assert np.abs(sig - 1 / (1 + np.exp(-x))).max() < 2 ** -11
    assert np.abs(th - np.tanh(x)).max() < 2 ** -11


def test_cell_scale_must_be_power_of_two():
    q = LstmQuant(0.02, 0, (0.01,) * 4, (0.01,) * 4, 0.01, 0, 0.01, 0, 3e-4)
    w = np.zeros((4, 2, 2), np.int8)
    with pytest.raises(UnsupportedOpError, match="cell-state scale"):
        prepare_lstm(q, w, w, np.zeros((4, 2), np.int32))


@pytest.mark.parametrize("lo,hi,pot", [(-1.0, 1.0, 0), (-10.0, 10.0, 4), (3.0, 10.0, 4), (-0.2, 0.1, 0),
                                       (-3000.0, 5.0, 10), (0.0, 8.0, 3), (0.0, 8.01, 4)])
def test_cell_scale_is_tflites_power_of_two(lo, hi, pot):
    """GetPowerOfTwoScale's cases from LiteRT's own test (the first three) and its edges: the
    smallest power of two covering the range, at most 2^10, as a scale over 32768."""
    assert cell_scale(lo, hi) == 2.0 ** pot / 32768
