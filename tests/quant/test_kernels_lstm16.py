"""npukit's 16x8 integer LSTM (kernels_lstm16: int16 input and hidden state). LiteRT has no
such kernel (its integer LSTM takes an int8 input: 8x8_16 and 8x8_8 only), so it is pinned to
the float LSTM with the same int8 weights within the tolerance docs/numerics.md gives, and to
8x8_16 (kernels_lstm, itself pinned to LiteRT) where the two must agree: the same cell state
and gates when the hidden state feeds nothing back."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.errors import UnsupportedOpError
from npukit.kernels.kernels_lstm import LstmQuant, cell_scale, lstm_float, lstm_sequence, prepare_lstm
from npukit.kernels.kernels_lstm16 import lstm_sequence16, prepare_lstm16

TOLERANCE = 2e-3        # max |h - h_float| (docs/numerics.md, "16x8 LSTM")


def _per_gate(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.abs(w).reshape(w.shape[0], -1).max(1) / 127
    return np.clip(np.round(w / s[:, None, None]), -127, 127).astype(np.int8), s


def _model(seed: int, batch: int, steps: int, n_in: int, n_cell: int, gates: int = 4):
    rng = np.random.default_rng(seed)
    w_in, s_in = _per_gate(rng.normal(0, 0.4, (gates, n_cell, n_in)))
    w_rec, s_rec = _per_gate(rng.normal(0, 0.4, (gates, n_cell, n_cell)))
    bias = rng.normal(0, 0.5, (gates, n_cell))
    x = rng.normal(0, 1, (batch, steps, n_in))
    h0, c0 = np.tanh(rng.normal(0, 1, (batch, n_cell))), rng.normal(0, 1, (batch, n_cell))
    return w_in, s_in, w_rec, s_rec, bias, x, h0, c0


@pytest.mark.parametrize("seed,batch,steps,n_in,n_cell,gates,reverse", [
    (0, 1, 1, 3, 4, 4, False), (1, 2, 20, 12, 16, 4, False), (2, 3, 9, 5, 8, 3, False), (3, 2, 15, 16, 12, 4, True)])
def test_16x8_lstm_close_to_float_and_finer_than_8x8_16(seed, batch, steps, n_in, n_cell, gates, reverse):
    w_in, s_in, w_rec, s_rec, bias, x, h0, c0 = _model(seed, batch, steps, n_in, n_cell, gates)
    y_f, h_f, c_f = lstm_float(x, h0, c0, w_in * s_in[:, None, None], w_rec * s_rec[:, None, None], bias, reverse)
    cs = cell_scale(-4.0, 4.0)
    c_q = np.round(c0 / cs).astype(np.int16)
    s_x, s_h = np.abs(x).max() / 32767, 1 / 32767
    q = LstmQuant(s_x, 0, tuple(s_in), tuple(s_rec), s_h, 0, s_h, 0, cs, cifg=gates == 3)
    p = prepare_lstm16(q, w_in, w_rec, np.round(bias / (s_x * s_in[:, None])).astype(np.int64))
    y, h, c = lstm_sequence16(np.round(x / s_x).astype(np.int16), np.round(h0 / s_h).astype(np.int16), c_q,
                              w_in, w_rec, p, reverse)
    assert y.dtype == np.int16 and y.shape == (batch, steps, n_cell)
    err16 = np.abs(y * s_h - y_f).max()
    assert err16 < TOLERANCE
    np.testing.assert_array_equal(h, y[:, 0 if reverse else -1])
    assert np.abs(c * cs - c_f).max() < TOLERANCE
    # the 8x8_16 LSTM on the same model: int8 input and hidden state, one LSB 1/127.5 of the hidden range
    s_x8, s_h8 = (x.max() - x.min()) / 255, 2 / 255
    z_x = int(round(-128 - x.min() / s_x8))
    q8 = LstmQuant(s_x8, z_x, tuple(s_in), tuple(s_rec), s_h8, 0, s_h8, 0, cs, cifg=gates == 3)
    p8 = prepare_lstm(q8, w_in, w_rec, np.round(bias / (s_x8 * s_in[:, None])).astype(np.int32))
    y8, _, _ = lstm_sequence(np.clip(np.round(x / s_x8) + z_x, -128, 127).astype(np.int8),
                             np.round(h0 / s_h8).astype(np.int8), c_q, w_in, w_rec, p8, reverse)
    err8 = np.abs(y8 * s_h8 - y_f).max()
    assert err16 * 8 < err8


def test_16x8_lstm_hand_worked_step():
    """One cell, one step, zero weights: every gate is its bias alone. Biases (Q3.12 via the
    input multiplier 2^-12 / (s_x s_w) = 1): i = f = o = logistic(0) = 1/2, g = tanh(1) = 0.7616;
    c = 1/2 c0 + 1/2 g with c0 = 0.5 -> 0.6308; h = o tanh(c) = 0.2793 (float: 0.27930)."""
    s_x = s_w = 2.0 ** -6
    w = np.zeros((4, 1, 1), np.int8)
    bias = np.array([[0], [0], [4096], [0]], np.int64)          # g's pre-activation 1.0 in Q3.12
    cs = 2.0 ** -15
    q = LstmQuant(s_x, 0, (s_w,) * 4, (s_w,) * 4, 1 / 32767, 0, 1 / 32767, 0, cs)
    y, h, c = lstm_sequence16(np.zeros((1, 1, 1), np.int16), np.zeros((1, 1), np.int16),
                              np.array([[16384]], np.int16), w, w, prepare_lstm16(q, w, w, bias))
    c_f = 0.25 + 0.5 * np.tanh(1.0)
    assert abs(c[0, 0] * cs - c_f) < 2 ** -12
    assert abs(h[0, 0] / 32767 - 0.5 * np.tanh(c_f)) < 2 ** -12


def test_16x8_lstm_refuses_a_zero_point():
    q = LstmQuant(0.01, 3, (0.01,) * 4, (0.01,) * 4, 0.01, 0, 0.01, 0, 2.0 ** -12)
    w = np.zeros((4, 2, 2), np.int8)
    with pytest.raises(UnsupportedOpError, match="zero points 0"):
        prepare_lstm16(q, w, w, np.zeros((4, 2), np.int64))
