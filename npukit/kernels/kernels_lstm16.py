"""npukit's 16x8 integer LSTM: int16 input and hidden state (zero point 0), int8 weights, int64
input-side biases, int16 gates and cell state: the 8x8_16 LSTM of kernels_lstm with its two
int8 activations widened as TFLite's 16x8 scheme widens a fully connected layer.

LiteRT has no such kernel: its integer LSTM (lstm.cc, unidirectional_sequence_lstm.cc) needs an
int8 input and has two variants only, 8x8_16 (int16 cell state and gates; kernels_lstm) and
8x8_8 (LSTM only, with layer norm: int8 gate intermediates). This one keeps every step of
8x8_16 (Q3.12 gates, gemmlowp logistic / tanh, the int16 cell update at its power-of-two scale)
and changes only what the wider activations touch:

  pre_k  = sat16(MBQM64(W_k x + b_k, in_k))                 x int16, b_k int64 at s_x s_w
  gate_k = sat16(MBQM64(R_k h, rec_k) + pre_k)              h int16
  h      = sat16(MBQM(o tanh(c), hidden))                   zero point 0

where MBQM64 is LiteRT's MultiplyByQuantizedMultiplier of an int64 accumulator (its 16x8 fully
connected requantisation: a 16-bit multiplier, one rounding). The multipliers are prepare_lstm's
(the same float32 effective scales). It is pinned to the float LSTM within the tolerance
docs/numerics.md gives, not to a LiteRT reference.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from npukit.errors import UnsupportedOpError
from npukit.kernels import intmath
from npukit.kernels.fixedpoint import INT16_MAX, INT16_MIN
from npukit.kernels.kernels_lstm import GATE_EXP, LstmParams, LstmQuant, cell_update, prepare_lstm


def prepare_lstm16(q: LstmQuant, w_input: np.ndarray, w_recurrent: np.ndarray, bias: np.ndarray,
                   gate_exp: int = GATE_EXP) -> LstmParams:
    """prepare_lstm for int16 activations: zero points 0, the int64 biases (G, C) kept whole,
    the gates in Q3.12 or (gate_exp -11) Q4.11. Peephole, layer norm and projection are not part
    of the 16x8 form."""
    if q.input_zp or q.state_zp or q.hidden_zp:
        raise UnsupportedOpError("16x8 LSTM needs zero points 0 on its int16 input and hidden state, got "
                                 f"{q.input_zp}, {q.state_zp}, {q.hidden_zp}")
    if q.peephole_scales or q.norm_scales or q.projection_scale:
        raise UnsupportedOpError("16x8 LSTM with peephole, layer norm or projection")
    p = prepare_lstm(q, w_input, w_recurrent, np.zeros(np.shape(bias), np.int32), gate_exp=gate_exp)
    return replace(p, bias=np.asarray(bias, np.int64))


def channels16(p: LstmParams) -> np.ndarray:
    """p.channels() with the bias row kept as int64."""
    rows = p.channels().astype(np.int64)
    rows[0] = np.asarray(p.bias, np.int64).reshape(-1)
    return rows


def matmul_acc64(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x W^T for x (..., K) int16 and W (G, K) int8: int64 accumulators (the MXU's 16x8 sums)."""
    return np.einsum("...k,nk->...n", np.asarray(x, np.int64), np.asarray(w, np.int64))


def lstm_sequence16(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
                    p: LstmParams, reverse: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kernels_lstm.lstm_sequence with x (B, T, I) and h0 (B, C) int16: -> (outputs (B, T, C)
    int16, final h int16, final c int16)."""
    ch = channels16(p)
    w_in = np.asarray(w_input).reshape(-1, np.shape(w_input)[-1])
    w_rec = np.asarray(w_recurrent).reshape(-1, np.shape(w_recurrent)[-1])
    pre = np.clip(intmath.multiply_by_quantized_multiplier_int64(matmul_acc64(x, w_in) + ch[0], ch[1],
                                                                 np.clip(ch[2], -31, 30)), INT16_MIN, INT16_MAX)
    h, c, q = np.asarray(h0, np.int16), np.asarray(c0, np.int16), p.cell()
    batch, steps = np.shape(x)[:2]
    out = np.empty((batch, steps, h.shape[-1]), np.int16)
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        c, h = cell_update(pre[:, t], matmul_acc64(h, w_rec), c, ch, q, p.variant, wide=True)
        out[:, t] = h
    return out, h, c
