"""An integer GRU in the style of TFLite's integer LSTM (kernels_lstm): int8 weights per gate,
int32 biases, int16 Q3.12 gate pre-activations through gemmlowp's int16 logistic / tanh, int8
hidden state. LiteRT has no integer GRU; this is npukit's algorithm (docs/numerics.md).

Gates z, r, n (ONNX order z, r, h). Per step, with MBQM MultiplyByQuantizedMultiplier and
RDBP RoundingDivideByPOT, h the int8 hidden state at (s_h, h_zp):
  pre_k = sat16(MBQM(W_k (x - x_zp) + b_k, in_k))            input part, all steps at once
  z, r  = logistic(sat16(MBQM(R_k (h - h_zp), rec_k) + pre_k))                      Q0.15
  linear_before_reset 1: n = tanh(sat16(pre_n + RDBP(r sat16(MBQM(R_n (h - h_zp) + rb_n, rec_n)), 15)))
  linear_before_reset 0: u = RDBP(r (h - h_zp), 15) + h_zp  (r h as int8 at the hidden scale)
                         n = tanh(sat16(MBQM(R_n (u - h_zp), rec_n) + pre_n))
  h' = clamp8(h_zp + RDBP(z (h - h_zp), 15) + MBQM((2^15 - z) n, hidden))
ONNX RNN is the single-gate cell of the same kernel (`rnn_update`, cell_mode 2 tanh / 3 relu):
  gate = sat16(MBQM(R (h - h_zp), rec) + pre), h' = clamp8(MBQM(act(gate), hidden) + h_zp)
with tanh on Q3.12 (hidden the multiplier of 2^-15 / s_h) or relu on a gate scale of s_h / 32
(int16 covers four times the int8 hidden range, 32 times finer, so an input part beyond the
hidden range rarely saturates before the recurrent part is added; hidden 1/32).
The biases b_k sum ONNX's Wb_k and Rb_k (for n only when linear_before_reset is 0, where Rb_n
is outside the reset product); rb_n = Rb_n at the recurrent scale. `hidden` is the multiplier
of 2^-30 / s_h (as the LSTM's output). The n gate's recurrent part needs r first when
linear_before_reset is 0: there a step is two matmuls (`reset_hidden` between them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.isa.instr_base import GRU_RNN_RELU, GRU_RNN_TANH
from npukit.kernels import intmath
from npukit.kernels.fixedpoint import INT16_MAX, INT16_MIN
from npukit.kernels.fixedpoint16 import logistic16, tanh16
from npukit.kernels.kernels_lstm import GATE_EXP, _f32, _sigmoid, gate_channel_rows, gate_requant, matmul_acc

GRU_PARAM_ROWS = 6      # bias, in_mult, in_shift, rec_mult, rec_shift, rec_bias per gate channel


@dataclass(frozen=True)
class GruQuant:
    """Per-tensor scales of the 3 input and 3 recurrent weight tensors (z, r, n), the input and
    the hidden state (in, out and the output sequence share it)."""
    input_scale: float
    input_zp: int
    w_input_scales: tuple[float, ...]
    w_recurrent_scales: tuple[float, ...]
    hidden_scale: float
    hidden_zp: int


@dataclass(frozen=True)
class GruCellParams:
    """The cell update's scalars (the VPU instruction's immediates)."""
    linear_before_reset: int
    hidden_multiplier: int
    hidden_shift: int
    hidden_zp: int


@dataclass(frozen=True)
class GruParams:
    input_zp: int
    input_multipliers: tuple[int, ...]
    input_shifts: tuple[int, ...]
    recurrent_multipliers: tuple[int, ...]
    recurrent_shifts: tuple[int, ...]
    bias: np.ndarray                        # (3, C) int32 at input x weight scale
    recurrent_bias: np.ndarray              # (C,) int32 at hidden x R_n scale (0 unless lbr 1)
    linear_before_reset: int
    hidden_multiplier: int
    hidden_shift: int
    hidden_zp: int
    cell_mode: int = 1                      # the step's last GRU_CELL mode: 1 GRU, else the RNN's

    def cell(self) -> GruCellParams:
        return GruCellParams(self.linear_before_reset, self.hidden_multiplier, self.hidden_shift, self.hidden_zp)

    def channels(self) -> np.ndarray:
        """(GRU_PARAM_ROWS, G C) int32 rows per gate channel (the VPU instruction's block)."""
        gates, n = self.bias.shape
        lbr_bias = np.concatenate([np.zeros((gates - 1) * n, np.int64), np.asarray(self.recurrent_bias, np.int64)])
        return np.stack([*gate_channel_rows(self), lbr_bias]).astype(np.int32)


def cell_mode(rnn: str) -> int:
    """The GRU_CELL mode of a step's last cell: 1 for the GRU, the RNN's for "tanh" / "relu"."""
    return {"": 1, "tanh": GRU_RNN_TANH, "relu": GRU_RNN_RELU}[rnn]


def prepare_gru(q: GruQuant, bias: np.ndarray, recurrent_bias: np.ndarray, linear_before_reset: int,
                cell_mode: int = 1) -> GruParams:
    """Multipliers as prepare_lstm computes them (float32 effective scales, gates in Q3.12; the
    relu RNN's at s_h / 32)."""
    relu = cell_mode == GRU_RNN_RELU
    gate_scale = _f32(_f32(q.hidden_scale) / _f32(32)) if relu else _f32(2.0 ** GATE_EXP)
    ins = [intmath.quantize_multiplier(float(_f32(_f32(ws) * _f32(q.input_scale) / gate_scale)))
           for ws in q.w_input_scales]
    recs = [intmath.quantize_multiplier(float(_f32(_f32(ws) * _f32(q.hidden_scale) / gate_scale)))
            for ws in q.w_recurrent_scales]
    if relu:
        hidden = float(_f32(gate_scale / _f32(q.hidden_scale)))
    elif cell_mode == GRU_RNN_TANH:
        hidden = float(_f32(2.0 ** -15 / float(_f32(q.hidden_scale))))
    else:
        hidden = float(_f32(2.0 ** -15 / float(_f32(q.hidden_scale)) * 2.0 ** -15))
    hm, hs = intmath.quantize_multiplier(hidden)
    return GruParams(int(q.input_zp), tuple(m for m, _ in ins), tuple(s for _, s in ins),
                     tuple(m for m, _ in recs), tuple(s for _, s in recs), np.asarray(bias, np.int32),
                     np.asarray(recurrent_bias, np.int32), int(linear_before_reset), hm, hs, int(q.hidden_zp),
                     int(cell_mode))


def _split(v, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(v, np.int64)
    return v[..., :c], v[..., c:2 * c], v[..., 2 * c:]


def reset_gates(pre, rec_acc, rec_multiplier, rec_shift) -> tuple[np.ndarray, np.ndarray]:
    """z and r (Q0.15) from the input part pre (n, >= 2C) and the recurrent accumulators of the
    first 2C gate channels rec_acc (n, 2C)."""
    c = np.shape(rec_acc)[-1] // 2
    rec = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(rec_acc), np.asarray(rec_multiplier)[:2 * c],
                                                   np.asarray(rec_shift)[:2 * c])
    gates = np.clip(rec + np.asarray(pre, np.int64)[..., :2 * c], INT16_MIN, INT16_MAX)
    return logistic16(gates[..., :c], 3), logistic16(gates[..., c:], 3)


def reset_hidden(r, h, hidden_zp: int) -> np.ndarray:
    """r h as int8 at the hidden quantisation (never outside int8: |r| < 1)."""
    u = intmath.rounding_divide_by_pot(np.asarray(r, np.int64) * (np.asarray(h, np.int64) - hidden_zp), 15)
    return (u + hidden_zp).astype(np.int8)


def cell_update(pre, rec_acc, h, rec_multiplier, rec_shift, rec_bias, q: GruCellParams) -> np.ndarray:
    """One step after the matmuls: pre (n, 3C) the saturated input part, rec_acc (n, 3C) the
    recurrent accumulators (the n gate's of R_n (u - h_zp) when linear_before_reset is 0),
    h (n, C) int8 -> the new hidden state int8."""
    c = np.shape(h)[-1]
    z, r = reset_gates(pre, np.asarray(rec_acc)[..., :2 * c], rec_multiplier, rec_shift)
    _, _, acc_n = _split(intmath.wrap_int32(np.asarray(rec_acc, np.int64) + np.asarray(rec_bias, np.int64)), c)
    rec_n = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(acc_n), np.asarray(rec_multiplier)[2 * c:],
                                                     np.asarray(rec_shift)[2 * c:])
    pre_n = np.asarray(pre, np.int64)[..., 2 * c:]
    if q.linear_before_reset:
        n_pre = pre_n + intmath.rounding_divide_by_pot(r * np.clip(rec_n, INT16_MIN, INT16_MAX), 15)
    else:
        n_pre = pre_n + rec_n
    n = tanh16(np.clip(n_pre, INT16_MIN, INT16_MAX), 3)
    hz = np.asarray(h, np.int64) - q.hidden_zp
    kept = intmath.rounding_divide_by_pot(z * hz, 15)
    new = intmath.multiply_by_quantized_multiplier((32768 - z) * n, q.hidden_multiplier, q.hidden_shift)
    return np.clip(kept + new + q.hidden_zp, -128, 127).astype(np.int8)


def rnn_update(pre, rec_acc, rec_multiplier, rec_shift, q: GruCellParams, relu: bool) -> np.ndarray:
    """ONNX RNN's step after the matmuls: pre (n, C) the saturated input part, rec_acc (n, C) the
    recurrent accumulators -> the new hidden state int8."""
    rec = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(rec_acc), rec_multiplier, rec_shift)
    gate = np.clip(rec + np.asarray(pre, np.int64), INT16_MIN, INT16_MAX)
    act = np.maximum(gate, 0) if relu else tanh16(gate, 3)
    h = intmath.multiply_by_quantized_multiplier(act, q.hidden_multiplier, q.hidden_shift) + q.hidden_zp
    return np.clip(h, -128, 127).astype(np.int8)


def gru_sequence(x: np.ndarray, h0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
                 p: GruParams, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Batch-major: x (B, T, I) int8, h0 (B, C) int8, weights (3, C, I) / (3, C, C) int8 ->
    (outputs (B, T, C) int8, final h); `reverse` runs the steps last to first."""
    ch = p.channels().astype(np.int64)
    c = np.shape(h0)[-1]
    w_in = np.asarray(w_input).reshape(-1, np.shape(w_input)[-1])
    w_rec = np.asarray(w_recurrent).reshape(-1, c)
    pre = gate_requant(matmul_acc(x, p.input_zp, w_in) + ch[0], ch[1], ch[2])
    h, q = np.asarray(h0, np.int8), p.cell()
    batch, steps = np.shape(x)[:2]
    out = np.empty((batch, steps, c), np.int8)
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        acc = matmul_acc(h, p.hidden_zp, w_rec)
        if p.cell_mode != 1:
            h = rnn_update(pre[:, t], acc, ch[3], ch[4], q, p.cell_mode == GRU_RNN_RELU)
            out[:, t] = h
            continue
        if not q.linear_before_reset:
            _, r = reset_gates(pre[:, t], acc[:, :2 * c], ch[3], ch[4])
            acc[:, 2 * c:] = matmul_acc(reset_hidden(r, h, p.hidden_zp), p.hidden_zp, w_rec[2 * c:])
        h = cell_update(pre[:, t], acc, h, ch[3], ch[4], ch[5], q)
        out[:, t] = h
    return out, h


def gru_float(x: np.ndarray, h0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray, bias: np.ndarray,
              recurrent_bias: np.ndarray, linear_before_reset: int, reverse: bool = False,
              cell_mode: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The float GRU the integer one approximates (float64 inside): bias (3, C) the summed
    input-side biases, recurrent_bias (C,) R_n's (inside the reset product when
    linear_before_reset is 1, else already in bias); cell_mode 2 / 3 ONNX RNN's tanh / relu
    cell (one gate)."""
    c = np.shape(h0)[-1]
    w_in = np.asarray(w_input, np.float64).reshape(-1, np.shape(w_input)[-1])
    w_rec = np.asarray(w_recurrent, np.float64).reshape(-1, c)
    pre = np.asarray(x, np.float64) @ w_in.T + np.asarray(bias, np.float64).reshape(-1)
    h = np.asarray(h0, np.float64)
    out = np.empty((*pre.shape[:2], c))
    steps = pre.shape[1]
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        if cell_mode != 1:
            v = pre[:, t] + h @ w_rec.T
            h = np.maximum(v, 0) if cell_mode == GRU_RNN_RELU else np.tanh(v)
            out[:, t] = h
            continue
        pz, pr, pn = np.split(pre[:, t], 3, axis=-1)
        rz, rr, _ = np.split(h @ w_rec.T, 3, axis=-1)
        z, r = _sigmoid(pz + rz), _sigmoid(pr + rr)
        if linear_before_reset:
            n = np.tanh(pn + r * (h @ w_rec[2 * c:].T + np.asarray(recurrent_bias, np.float64)))
        else:
            n = np.tanh(pn + (r * h) @ w_rec[2 * c:].T)
        h = (1 - z) * n + z * h
        out[:, t] = h
    return out.astype(np.float32), h.astype(np.float32)
