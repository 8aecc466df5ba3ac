"""TFLite's fully integer LSTM ("8x8_16": int8 weights, input and hidden state; int16 gates and
cell state), as UNIDIRECTIONAL_SEQUENCE_LSTM's Prepare (PopulateQuantizedLstmParams8x8_16,
PrecomputeZeroPointTimesWeightWithBias) and lstm_eval's EvalInteger8x8_16 compute it.

Supported: the four gates with full input and recurrent weights. Not supported (refused by
`prepare_lstm`'s callers): CIFG, peephole, layer norm, projection, proj_clip.

One step, per gate k in (input, forget, cell, output):
  pre_k  = sat16(MBQM(W_k x + b_k - x_zp rowsum(W_k), in_k))            (input part)
  gate_k = sat16(MBQM(R_k h - h_zp rowsum(R_k), rec_k) + pre_k)          (recurrent part)
  Q3.12 gates: i, f, o = logistic(gate); g = tanh(gate)                  (Q0.15 out)
  c = sat16(RDBP(f c, 15) + wrap16(RDBP(i g, 30 + cell_exp))), clipped to +-cell_clip
  h = clamp8(MBQM(o tanh_Q(15+cell_exp)(c), hidden) + hidden_zp)
where MBQM is MultiplyByQuantizedMultiplier, RDBP RoundingDivideByPOT and the cell scale is
2^cell_exp. The input part depends on x only, so a sequence computes it for all steps at once
(`input_preactivations`); `cell_step` is the rest of a step given the recurrent accumulators.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.errors import UnsupportedOpError
from npukit.kernels import intmath
from npukit.kernels.fixedpoint import INT16_MAX, INT16_MIN, wrap16
from npukit.kernels.fixedpoint16 import logistic16, tanh16
from npukit.kernels.kernels_vpu16 import checked_log2

GATES = ("input", "forget", "cell", "output")
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
class LstmParams:
    """Prepared integer parameters: multipliers (Q31) and shifts per gate, effective biases."""
    input_multipliers: tuple[int, ...]
    input_shifts: tuple[int, ...]
    recurrent_multipliers: tuple[int, ...]
    recurrent_shifts: tuple[int, ...]
    hidden_multiplier: int
    hidden_shift: int
    hidden_zp: int
    cell_exp: int
    cell_clip: int                          # quantised, 0 = none
    input_bias: np.ndarray                  # (4, n_cell) int64: bias - x_zp rowsum(W)
    recurrent_bias: np.ndarray              # (4, n_cell) int64: -h_zp rowsum(R)


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
    w_in = np.asarray(w_input, np.int64)
    w_rec = np.asarray(w_recurrent, np.int64)
    return LstmParams(
        tuple(m for m, _ in ins), tuple(s for _, s in ins),
        tuple(m for m, _ in recs), tuple(s for _, s in recs),
        hm, hs, int(q.hidden_zp), cell_exp, clip,
        np.asarray(bias, np.int64) - int(q.input_zp) * w_in.sum(axis=2),
        -int(q.state_zp) * w_rec.sum(axis=2))


def _requant_gate(acc: np.ndarray, multipliers, shifts) -> np.ndarray:
    """MBQM per gate on (4, ..., n_cell) int32 accumulators."""
    return np.stack([intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(acc[k]), multipliers[k], shifts[k])
                     for k in range(4)])


def input_preactivations(x: np.ndarray, w_input: np.ndarray, p: LstmParams) -> np.ndarray:
    """The input part of the four gates for every row of x (..., n_input) int8: (4, ..., n_cell)
    int16, already saturated as the gate buffer holds it after the first accumulate."""
    x = np.asarray(x, np.int64)
    acc = np.einsum("...i,kci->k...c", x, np.asarray(w_input, np.int64))
    acc = acc + p.input_bias.reshape((4,) + (1,) * (x.ndim - 1) + (-1,))
    return np.clip(_requant_gate(acc, p.input_multipliers, p.input_shifts), INT16_MIN, INT16_MAX)


def recurrent_accumulators(h: np.ndarray, w_recurrent: np.ndarray, p: LstmParams) -> np.ndarray:
    """R_k h - h_zp rowsum(R_k) for h (batch, n_output) int8: (4, batch, n_cell) int32 values."""
    acc = np.einsum("bo,kco->kbc", np.asarray(h, np.int64), np.asarray(w_recurrent, np.int64))
    return intmath.wrap_int32(acc + p.recurrent_bias[:, None, :])


def cell_step(pre: np.ndarray, rec_acc: np.ndarray, c: np.ndarray, p: LstmParams) -> tuple[np.ndarray, np.ndarray]:
    """One step after the matmuls: pre (4, B, C) int16 input part, rec_acc (4, B, C) recurrent
    accumulators, c (B, C) int16 cell state -> (new cell state int16, hidden int8)."""
    gates = np.clip(_requant_gate(rec_acc, p.recurrent_multipliers, p.recurrent_shifts) + pre, INT16_MIN, INT16_MAX)
    i_g = logistic16(gates[0], 3)
    f_g = logistic16(gates[1], 3)
    g_g = tanh16(gates[2], 3)
    o_g = logistic16(gates[3], 3)
    kept = intmath.rounding_divide_by_pot(f_g * np.asarray(c, np.int64), 15)
    new = wrap16(intmath.rounding_divide_by_pot(i_g * g_g, 30 + p.cell_exp))
    c_new = np.clip(kept + new, INT16_MIN, INT16_MAX)
    if p.cell_clip > 0:
        c_new = np.clip(c_new, -p.cell_clip, p.cell_clip)
    t = tanh16(c_new, 15 + p.cell_exp)
    h = intmath.multiply_by_quantized_multiplier(o_g * t, p.hidden_multiplier, p.hidden_shift) + p.hidden_zp
    return c_new.astype(np.int16), np.clip(h, -128, 127).astype(np.int8)


def lstm_sequence(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
                  p: LstmParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-major sequence: x (B, T, n_input) int8, h0 (B, n_output) int8, c0 (B, n_cell) int16
    -> (outputs (B, T, n_output) int8, final h, final c)."""
    pre = input_preactivations(x, w_input, p)          # (4, B, T, C)
    h, c = np.asarray(h0, np.int8), np.asarray(c0, np.int16)
    out = np.empty(x.shape[:2] + (h.shape[-1],), np.int8)
    for t in range(x.shape[1]):
        c, h = cell_step(pre[:, :, t], recurrent_accumulators(h, w_recurrent, p), c, p)
        out[:, t] = h
    return out, h, c

