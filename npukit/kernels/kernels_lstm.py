"""TFLite's fully integer LSTM ("8x8_16": int8 weights, input and hidden state; int16 gates and
cell state), as UNIDIRECTIONAL_SEQUENCE_LSTM's Prepare (PopulateQuantizedLstmParams8x8_16,
PrecomputeZeroPointTimesWeightWithBias) and lstm_eval's EvalInteger8x8_16 compute it.

Supported: the four gates with full input and recurrent weights. Not supported (the TFLite and
ONNX converters refuse them, so they stay on the host): CIFG, peephole, layer norm, projection.

One step, per gate k in (input, forget, cell, output):
  pre_k  = sat16(MBQM(W_k (x - x_zp) + b_k, in_k))                       (input part)
  gate_k = sat16(MBQM(R_k (h - h_zp), rec_k) + pre_k)                    (recurrent part)
  Q3.12 gates: i, f, o = logistic(gate); g = tanh(gate)                  (Q0.15 out)
  c = sat16(RDBP(f c, 15) + wrap16(RDBP(i g, 30 + cell_exp))), clipped to +-cell_clip
  h = clamp8(MBQM(o tanh_Q(15+cell_exp)(c), hidden) + hidden_zp)
where MBQM is MultiplyByQuantizedMultiplier, RDBP RoundingDivideByPOT and the cell scale is
2^cell_exp; W (x - zp) is TFLite's W x - zp rowsum(W) (its precomputed effective bias), in
the form the MXU computes it. The input part depends on x only, so a sequence computes it for
all steps in one matmul; `cell_update` is the rest of a step given the recurrent accumulators
(the NPU's LSTM_CELL instruction).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from npukit.errors import UnsupportedOpError
from npukit.kernels import intmath
from npukit.kernels.fixedpoint import INT16_MAX, INT16_MIN, wrap16
from npukit.kernels.fixedpoint16 import logistic16, tanh16
from npukit.kernels.kernels_vpu16 import checked_log2

if TYPE_CHECKING:
    from npukit.kernels.kernels_gru import GruParams

GATE_EXP = -12                              # gate pre-activations in Q3.12 (no layer norm)


@dataclass(frozen=True)
class LstmQuant:
    """Quantisation of an integer LSTM: per-tensor scales of the 4 input and 4 recurrent weight
    tensors (gate order i, f, g, o), input, hidden state (= output), cell state."""
    input_scale: float
    input_zp: int
    w_input_scales: tuple[float, ...]        # 4 entries
    w_recurrent_scales: tuple[float, ...]
    state_scale: float                      # output_state tensor
    state_zp: int
    hidden_scale: float                     # intermediate 4 (equals the output's without projection)
    hidden_zp: int
    cell_scale: float                       # a power of two
    cell_clip: float = 0.0                  # float clip of the cell state, 0 = none


@dataclass(frozen=True)
class LstmCellParams:
    """The cell update's scalars (the VPU instruction's immediates)."""
    cell_exp: int                           # the cell state's scale is 2^cell_exp
    cell_clip: int                          # quantised, 0 = none
    hidden_multiplier: int
    hidden_shift: int
    hidden_zp: int


@dataclass(frozen=True)
class LstmParams:
    """Prepared integer parameters: per gate (i, f, g, o) Q31 multipliers and shifts of the
    input and recurrent parts, the int32 gate biases (4, C), the zero points the matmuls
    subtract, and the cell update's scalars."""
    input_zp: int
    state_zp: int
    input_multipliers: tuple[int, ...]
    input_shifts: tuple[int, ...]
    recurrent_multipliers: tuple[int, ...]
    recurrent_shifts: tuple[int, ...]
    bias: np.ndarray
    cell_exp: int
    cell_clip: int
    hidden_multiplier: int
    hidden_shift: int
    hidden_zp: int

    def cell(self) -> LstmCellParams:
        return LstmCellParams(self.cell_exp, self.cell_clip, self.hidden_multiplier, self.hidden_shift,
                              self.hidden_zp)

    def channels(self) -> np.ndarray:
        """(5, 4C) int32 rows per gate channel: bias, input multiplier and shift, recurrent
        multiplier and shift (the VPU instruction's parameter block)."""
        return np.stack(gate_channel_rows(self)).astype(np.int32)


def gate_channel_rows(p: LstmParams | GruParams) -> list[np.ndarray]:
    """A recurrent cell's per-gate-channel int64 rows: the biases, then each gate's input
    multiplier and shift and recurrent multiplier and shift repeated over its C channels."""
    n = p.bias.shape[-1]
    rows = [np.asarray(p.bias, np.int64).reshape(-1)]
    for values in (p.input_multipliers, p.input_shifts, p.recurrent_multipliers, p.recurrent_shifts):
        rows.append(np.repeat(np.asarray(values, np.int64), n))
    return rows


def cell_scale(lo: float, hi: float) -> float:
    """The cell state's scale TFLite's quantiser picks for a calibrated range: 2^pot / 32768,
    pot the smallest of 0..10 with 2^pot >= max(|lo|, |hi|) (GetPowerOfTwoScale)."""
    bound = max(abs(float(np.float32(lo))), abs(float(np.float32(hi))))
    pot = 0
    for _ in range(10):
        if 2.0 ** pot < bound:
            pot += 1
    return 2.0 ** pot / 32768


def _f32(x) -> np.float32:
    return np.float32(x)


def prepare_lstm(q: LstmQuant, w_input: np.ndarray, w_recurrent: np.ndarray, bias: np.ndarray) -> LstmParams:
    """PopulateQuantizedLstmParams8x8_16 without layer norm / peephole / projection.

    w_input (4, n_cell, n_input) int8, w_recurrent (4, n_cell, n_output) int8, bias (4, n_cell)
    int32. Effective scales are float32 products as the C++ computes them.
    """
    cell_exp, pot = checked_log2(q.cell_scale)
    if not pot or not -15 <= cell_exp <= -9:
        raise UnsupportedOpError(f"integer LSTM needs a cell-state scale 2^k with -15 <= k <= -9, got {q.cell_scale}")
    gate_scale = _f32(2.0 ** GATE_EXP)
    ins = [intmath.quantize_multiplier(float(_f32(_f32(ws) * _f32(q.input_scale) / gate_scale)))
           for ws in q.w_input_scales]
    recs = [intmath.quantize_multiplier(float(_f32(_f32(ws) * _f32(q.state_scale) / gate_scale)))
            for ws in q.w_recurrent_scales]
    hidden = float(_f32(2.0 ** -15 / float(_f32(q.hidden_scale)) * 2.0 ** -15))
    hm, hs = intmath.quantize_multiplier(hidden)
    clip = 0
    if q.cell_clip > 0:
        clip = int(min(max(float(_f32(_f32(q.cell_clip) / _f32(q.cell_scale))), -32768.0), 32767.0))
    return LstmParams(int(q.input_zp), int(q.state_zp), tuple(m for m, _ in ins), tuple(s for _, s in ins),
                      tuple(m for m, _ in recs), tuple(s for _, s in recs), np.asarray(bias, np.int32),
                      cell_exp, clip, hm, hs, int(q.hidden_zp))


def gate_requant(acc, multiplier, shift) -> np.ndarray:
    """sat16(MultiplyByQuantizedMultiplier(acc)) per gate channel (last axis, 4C)."""
    return np.clip(intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(acc), multiplier, shift),
                   INT16_MIN, INT16_MAX)


def matmul_acc(x: np.ndarray, zp: int, w: np.ndarray) -> np.ndarray:
    """(x - zp) W^T for x (..., K) int8 and W (4C, K): the MXU's int32 accumulators."""
    return intmath.wrap_int32(np.einsum("...k,nk->...n", np.asarray(x, np.int64) - zp, np.asarray(w, np.int64)))


def cell_update(pre, rec_acc, c, rec_multiplier, rec_shift, q: LstmCellParams) -> tuple[np.ndarray, np.ndarray]:
    """One step after the matmuls: pre (n, 4C) the saturated input part, rec_acc (n, 4C) the
    recurrent accumulators, c (n, C) int16 -> (new cell state int16, hidden int8)."""
    gates = np.clip(intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(rec_acc), rec_multiplier, rec_shift)
                    + np.asarray(pre, np.int64), INT16_MIN, INT16_MAX)
    i_pre, f_pre, g_pre, o_pre = np.split(gates, 4, axis=-1)
    i_g, f_g, g_g, o_g = logistic16(i_pre, 3), logistic16(f_pre, 3), tanh16(g_pre, 3), logistic16(o_pre, 3)
    kept = wrap16(intmath.rounding_divide_by_pot(f_g * np.asarray(c, np.int64), 15))
    new = wrap16(intmath.rounding_divide_by_pot(i_g * g_g, 30 + q.cell_exp))
    c_new = np.clip(kept + new, INT16_MIN, INT16_MAX)
    if q.cell_clip > 0:
        c_new = np.clip(c_new, -q.cell_clip, q.cell_clip)
    t = tanh16(c_new, 15 + q.cell_exp)
    h = intmath.multiply_by_quantized_multiplier(o_g * t, q.hidden_multiplier, q.hidden_shift) + q.hidden_zp
    return c_new.astype(np.int16), np.clip(h, -128, 127).astype(np.int8)


def lstm_sequence(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
                  p: LstmParams, reverse: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-major sequence: x (B, T, n_input) int8, h0 (B, C) int8, c0 (B, C) int16, weights
    (4, C, n_input) and (4, C, C) -> (outputs (B, T, C) int8, final h, final c). The input
    part of every step comes from one matmul over the whole sequence; `reverse` runs the steps
    from the last time index to the first."""
    ch = p.channels().astype(np.int64)
    w_in = np.asarray(w_input).reshape(-1, np.shape(w_input)[-1])
    w_rec = np.asarray(w_recurrent).reshape(-1, np.shape(w_recurrent)[-1])
    pre = gate_requant(matmul_acc(x, p.input_zp, w_in) + ch[0], ch[1], ch[2])     # (B, T, 4C)
    h, c, q = np.asarray(h0, np.int8), np.asarray(c0, np.int16), p.cell()
    batch, steps = np.shape(x)[:2]
    out = np.empty((batch, steps, h.shape[-1]), np.int8)
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        c, h = cell_update(pre[:, t], matmul_acc(h, p.state_zp, w_rec), c, ch[3], ch[4], q)
        out[:, t] = h
    return out, h, c


def lstm_float(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
               bias: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float LSTM the integer one approximates (gates i, f, g, o; float64 inside):
    x (B, T, I), h0 / c0 (B, C), weights (4, C, I) / (4, C, C), bias (4, C) -> (y, h, c);
    `reverse` runs the steps from the last time index to the first."""
    w_in = np.asarray(w_input, np.float64).reshape(-1, np.shape(w_input)[-1])
    w_rec = np.asarray(w_recurrent, np.float64).reshape(-1, np.shape(w_recurrent)[-1])
    pre = np.asarray(x, np.float64) @ w_in.T + np.asarray(bias, np.float64).reshape(-1)
    h, c = np.asarray(h0, np.float64), np.asarray(c0, np.float64)
    out = np.empty((*pre.shape[:2], h.shape[-1]))
    steps = pre.shape[1]
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        i_g, f_g, g_g, o_g = np.split(pre[:, t] + h @ w_rec.T, 4, axis=-1)
        c = _sigmoid(f_g) * c + _sigmoid(i_g) * np.tanh(g_g)
        h = _sigmoid(o_g) * np.tanh(c)
        out[:, t] = h
    return out.astype(np.float32), h.astype(np.float32), c.astype(np.float32)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))
