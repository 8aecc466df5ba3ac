"""TFLite's fully integer LSTM ("8x8_16": int8 weights, input and hidden state; int16 gates and
cell state), as UNIDIRECTIONAL_SEQUENCE_LSTM's Prepare (PopulateQuantizedLstmParams8x8_16,
PrecomputeZeroPointTimesWeightWithBias) and lstm_eval's EvalInteger8x8_16 compute it.

The variants TFLite's kernel has: CIFG (no input gate; i = 1 - f), peephole (int16 diagonal
cell-to-gate weights: gate += sat16(MBQM(w_c c, peep_k)), the output gate's from the updated
cell state), layer norm (every gate's pre-activation, at its intermediate's scale instead of
Q3.12, normalised over its C cells as ApplyLayerNorm does, the gate bias added there rather than
in the matmul) and projection (the cell's output at the hidden intermediate's quantisation with
zero point -hidden_zp, then h = clamp8(MBQM(P (m - zp) + b, proj) + out_zp), clipped to
+-proj_clip: `project`).

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
from npukit.isa.instr_base import (LSTM_CIFG, LSTM_GATE_CLIP, LSTM_GATE_Q4, LSTM_LAYER_NORM, LSTM_NORM_ROWS,
                                   LSTM_PARAM_ROWS, LSTM_PEEPHOLE, LSTM_PEEPHOLE_ROWS, lstm_gate_bits)
from npukit.kernels import intmath
from npukit.kernels.fixedpoint import INT16_MAX, INT16_MIN, wrap16
from npukit.kernels.fixedpoint16 import logistic16, tanh16
from npukit.kernels.kernels_vpu16 import checked_log2
from npukit.kernels.kernels_vpu_unary import inv_sqrt_multiplier_exp

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
    cifg: bool = False                      # the scales tuples then have 3 entries (f, g, o)
    gate_scales: tuple[float, ...] = ()     # layer norm: intermediates 0-3 of the gates present
    peephole_scales: tuple[float, ...] = () # per gate present (the g gate's unused)
    norm_scales: tuple[float, ...] = ()     # layer-norm coefficients' per gate present
    projection_scale: float = 0.0           # projection weights (state_scale is then the output's)
    proj_clip: float = 0.0
    gate_clip: float = 0.0                  # ONNX's clip of every gate's pre-activation, 0 = none


@dataclass(frozen=True)
class LstmProjection:
    """The projection after the cell: weights (n_output, C) int8, bias (n_output,) int32, the
    requantisation to the output state and its clamp (proj_clip folded into the int8 range)."""
    weights: np.ndarray
    bias: np.ndarray
    multiplier: int
    shift: int
    output_zp: int
    act_min: int
    act_max: int


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
    hidden_zp: int                          # the cell output's (-hidden_zp with projection)
    variant: int = 0                        # LSTM_CELL variant bits
    extra: tuple[np.ndarray, ...] = ()      # the peephole's and layer norm's rows (G,)
    projection: LstmProjection | None = None

    def cell(self) -> LstmCellParams:
        return LstmCellParams(self.cell_exp, self.cell_clip, self.hidden_multiplier, self.hidden_shift,
                              self.hidden_zp)

    def channels(self) -> np.ndarray:
        """(lstm_param_rows(variant), G) int32 rows per gate channel: bias, input multiplier and
        shift, recurrent multiplier and shift, then the variant's (the VPU instruction's block)."""
        return np.stack([*gate_channel_rows(self), *self.extra]).astype(np.int32)


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


def _scale_multiplier(a, b, c) -> tuple[int, int]:
    """QuantizeMultiplier of the float32 effective scale a b / c."""
    return intmath.quantize_multiplier(float(_f32(_f32(a) * _f32(b) / _f32(c))))


def _per_gate(values: list[tuple[int, int]], c: int) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers and shifts of each gate repeated over its c channels."""
    return (np.repeat(np.asarray([m for m, _ in values], np.int64), c),
            np.repeat(np.asarray([s for _, s in values], np.int64), c))


def prepare_lstm(q: LstmQuant, w_input: np.ndarray, w_recurrent: np.ndarray, bias: np.ndarray,
                 peephole: np.ndarray | None = None, norm: np.ndarray | None = None,
                 projection: np.ndarray | None = None, projection_bias: np.ndarray | None = None,
                 gate_exp: int = GATE_EXP) -> LstmParams:
    """PopulateQuantizedLstmParams8x8_16 and the effective biases. gate_exp -11 (not TFLite's:
    the LSTM_GATE_Q4 variant, for float models) puts the gate sums in Q4.11 instead of Q3.12.

    w_input (G, n_cell, n_input) int8, w_recurrent (G, n_cell, n_output) int8, bias (G, n_cell)
    int32 for the G gates present; peephole (G, n_cell) int16 (the g gate's row unused), norm
    (G, n_cell) int16 layer-norm coefficients, projection (n_output, n_cell) int8 and its int32
    bias. Effective scales are float32 products as the C++ computes them.
    """
    cell_exp, pot = checked_log2(q.cell_scale)
    if not pot or not -15 <= cell_exp <= -9:
        raise UnsupportedOpError(f"integer LSTM needs a cell-state scale 2^k with -15 <= k <= -9, got {q.cell_scale}")
    gates, c = np.shape(bias)
    if gate_exp not in (GATE_EXP, GATE_EXP + 1) or (gate_exp != GATE_EXP and norm is not None):
        raise UnsupportedOpError(f"integer LSTM gates at 2^{gate_exp} (Q3.12, or Q4.11 without layer norm)")
    gate_scales = q.gate_scales if norm is not None else (2.0 ** gate_exp,) * gates
    ins = [_scale_multiplier(ws, q.input_scale, gs) for ws, gs in zip(q.w_input_scales, gate_scales)]
    recs = [_scale_multiplier(ws, q.state_scale, gs) for ws, gs in zip(q.w_recurrent_scales, gate_scales)]
    hidden = float(_f32(2.0 ** -15 / float(_f32(q.hidden_scale)) * 2.0 ** -15))
    hm, hs = intmath.quantize_multiplier(hidden)
    clip = 0
    if q.cell_clip > 0:
        clip = int(min(max(float(_f32(_f32(q.cell_clip) / _f32(q.cell_scale))), -32768.0), 32767.0))
    variant, extra = LSTM_CIFG * (gates == 3) | LSTM_GATE_Q4 * (gate_exp != GATE_EXP), []
    if peephole is not None and np.shape(w_recurrent)[-1] != c:
        raise UnsupportedOpError(f"peephole LSTM projecting {c} cells to {np.shape(w_recurrent)[-1]} outputs "
                                 "(LiteRT's integer peephole indexes the cell state by output)")
    if peephole is not None:             # the double 2^cell_exp w / gate scale, stored as float
        variant |= LSTM_PEEPHOLE
        peep = [intmath.quantize_multiplier(float(_f32(2.0 ** cell_exp * float(_f32(ws)) / float(_f32(gs)))))
                for ws, gs in zip(q.peephole_scales, gate_scales)]
        extra += [np.asarray(peephole, np.int64).reshape(-1), *_per_gate(peep, c)]
    if norm is not None:
        variant |= LSTM_LAYER_NORM
        lns = [intmath.quantize_multiplier(float(_f32(s))) for s in q.norm_scales]
        guards = [max(1, int(_f32(_f32(10000) * _f32(s)))) for s in q.norm_scales]
        ln_m, ln_s = _per_gate(lns, c)
        extra += [np.asarray(norm, np.int64).reshape(-1), np.asarray(bias, np.int64).reshape(-1), ln_m, ln_s + 12,
                  np.repeat(np.asarray(guards, np.int64), c)]
        bias = np.zeros_like(bias)       # the gate bias joins in the layer norm, not the matmul
    if q.gate_clip > 0:                  # in the gates' codes (beyond their range: the saturation itself)
        variant |= LSTM_GATE_CLIP
        extra.append(np.full(gates * c, min(int(round(float(q.gate_clip) * 2 ** -gate_exp)), 32767), np.int64))
    proj, zp = None, int(q.hidden_zp)
    if projection is not None:
        pm, ps = _scale_multiplier(q.projection_scale, q.hidden_scale, q.state_scale)
        lo, hi = -128, 127
        if q.proj_clip > 0:
            pc = int(min(max(float(_f32(_f32(q.proj_clip) / _f32(q.state_scale))), -128.0), 127.0))
            lo, hi = max(lo, -pc), min(hi, pc)
        pb = np.zeros(np.shape(projection)[0], np.int32) if projection_bias is None else projection_bias
        proj = LstmProjection(np.asarray(projection, np.int8), np.asarray(pb, np.int32), pm, ps, int(q.state_zp), lo, hi)
        zp = -zp                         # the cell writes m - hidden_zp (b/246629213), the projection adds it back
    return LstmParams(int(q.input_zp), int(q.state_zp), tuple(m for m, _ in ins), tuple(s for _, s in ins),
                      tuple(m for m, _ in recs), tuple(s for _, s in recs), np.asarray(bias, np.int32),
                      cell_exp, clip, hm, hs, zp, variant, tuple(extra), proj)


def gate_requant(acc, multiplier, shift) -> np.ndarray:
    """sat16(MultiplyByQuantizedMultiplier(acc)) per gate channel (last axis, 4C)."""
    return np.clip(intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(acc), multiplier, shift),
                   INT16_MIN, INT16_MAX)


def matmul_acc(x: np.ndarray, zp: int, w: np.ndarray) -> np.ndarray:
    """(x - zp) W^T for x (..., K) int8 and W (4C, K): the MXU's int32 accumulators."""
    return intmath.wrap_int32(np.einsum("...k,nk->...n", np.asarray(x, np.int64) - zp, np.asarray(w, np.int64)))


def _tdiv(a, b) -> np.ndarray:
    """C++ integer division (truncating toward zero)."""
    a = np.asarray(a, np.int64)
    return np.where(a >= 0, a // b, -((-a) // b))


def layer_norm(x, coeff, bias, multiplier, shift, guard) -> np.ndarray:
    """ApplyLayerNorm of TFLite's integer LSTM over the last axis (C cells of one gate): mean and
    variance in int64 with 2^10 and 2^20 factors, gemmlowp's inverse square root per row, then
    coeff, bias and MBQM(., multiplier, shift) (shift includes TFLite's + 12) to int16. Every
    argument but x is a (C,) row; the variance guard is its first element."""
    x = np.asarray(x, np.int64)
    n = x.shape[-1]
    mean = _tdiv(x.sum(-1, keepdims=True) * 1024, n)
    variance = (x * x).sum(-1, keepdims=True) * ((1 << 20) // n) - mean * mean
    v = intmath.wrap_int32(_tdiv(variance, 1 << 20))
    v = np.where(v < 1, np.asarray(guard, np.int64)[..., :1], v)
    inv = [inv_sqrt_multiplier_exp(int(value)) for value in v.reshape(-1)]
    inv_m = np.asarray([m for m, _ in inv], np.int64).reshape(v.shape)
    inv_s = np.asarray([s for _, s in inv], np.int64).reshape(v.shape)
    rescaled = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(1024 * x - mean), inv_m, inv_s)
    val3 = intmath.wrap_int32(rescaled * np.asarray(coeff, np.int64) + np.asarray(bias, np.int64))
    val4 = _tdiv(val3 + np.where(val3 > 0, 512, -512), 1024)
    out = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(val4), multiplier, np.clip(shift, -31, 30))
    return np.clip(out, INT16_MIN, INT16_MAX)


def cell_update(pre, rec_acc, c, rows, q: LstmCellParams, variant: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One step after the matmuls: pre (n, G) the saturated input part, rec_acc (n, G) the
    recurrent accumulators, c (n, C) int16, rows the parameter block (its rows 3 on are read)
    -> (new cell state int16, hidden int8)."""
    rows = np.asarray(rows, np.int64)
    n_c = np.shape(c)[-1]
    gates = np.clip(intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(rec_acc), rows[3],
                                                             np.clip(rows[4], -31, 30))
                    + np.asarray(pre, np.int64), INT16_MIN, INT16_MAX)
    extra = rows[LSTM_PARAM_ROWS:]
    peep = extra[:LSTM_PEEPHOLE_ROWS] if variant & LSTM_PEEPHOLE else None
    extra = extra[LSTM_PEEPHOLE_ROWS * (peep is not None):]
    norm = extra[:LSTM_NORM_ROWS] if variant & LSTM_LAYER_NORM else None
    if variant & LSTM_GATE_CLIP:
        bound = extra[LSTM_NORM_ROWS * (norm is not None)]
        gates = np.clip(gates, -bound, bound)
    cifg = bool(variant & LSTM_CIFG)

    def gate(j: int, state, peephole: bool = True) -> np.ndarray:
        """Gate j's pre-activation (Q3.12): peephole from `state`, then layer norm."""
        cols = slice(j * n_c, (j + 1) * n_c)
        x = gates[..., cols]
        if peep is not None and peephole:
            w, m, s = (r[cols] for r in peep)
            x = np.clip(x + intmath.multiply_by_quantized_multiplier(w * np.asarray(state, np.int64), m,
                                                                     np.clip(s, -31, 30)), INT16_MIN, INT16_MAX)
        return layer_norm(x, *(r[cols] for r in norm)) if norm is not None else x
    first = 0 if cifg else 1                                # the forget gate's index
    bits = lstm_gate_bits(variant)
    f_g = logistic16(gate(first, c), bits)
    g_g = tanh16(gate(first + 1, c, False), bits)
    i_g = 32767 - f_g if cifg else logistic16(gate(0, c), bits)
    kept = wrap16(intmath.rounding_divide_by_pot(f_g * np.asarray(c, np.int64), 15))
    new = wrap16(intmath.rounding_divide_by_pot(i_g * g_g, 30 + q.cell_exp))
    c_new = np.clip(kept + new, INT16_MIN, INT16_MAX)
    if q.cell_clip > 0:
        c_new = np.clip(c_new, -q.cell_clip, q.cell_clip)
    o_g = logistic16(gate(first + 2, c_new), bits)
    t = tanh16(c_new, 15 + q.cell_exp)
    h = intmath.multiply_by_quantized_multiplier(o_g * t, q.hidden_multiplier, q.hidden_shift) + q.hidden_zp
    return c_new.astype(np.int16), np.clip(h, -128, 127).astype(np.int8)


def project(m: np.ndarray, zp: int, p: LstmProjection) -> np.ndarray:
    """The projected hidden state: clamp(MBQM((m - zp) P^T + b, proj) + out_zp) as int8."""
    acc = matmul_acc(m, zp, p.weights) + np.asarray(p.bias, np.int64)
    out = intmath.multiply_by_quantized_multiplier(intmath.wrap_int32(acc), p.multiplier, p.shift) + p.output_zp
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def lstm_sequence(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
                  p: LstmParams, reverse: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-major sequence: x (B, T, n_input) int8, h0 (B, O) int8, c0 (B, C) int16, weights
    (G, C, n_input) and (G, C, O) -> (outputs (B, T, O) int8, final h, final c). The input
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
        c, h = cell_update(pre[:, t], matmul_acc(h, p.state_zp, w_rec), c, ch, q, p.variant)
        if p.projection is not None:
            h = project(h, p.hidden_zp, p.projection)
        out[:, t] = h
    return out, h, c


def lstm_float(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_input: np.ndarray, w_recurrent: np.ndarray,
               bias: np.ndarray, reverse: bool = False, peephole: np.ndarray | None = None,
               clip: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float LSTM the integer one approximates (gates i, f, g, o; float64 inside):
    x (B, T, I), h0 / c0 (B, C), weights (G, C, I) / (G, C, C), bias (G, C) -> (y, h, c), G = 4
    or 3 (CIFG, ONNX's input_forget: f, g, o and i = 1 - f); `reverse` runs the steps from the
    last time index to the first; peephole (G, C) adds p_i c and p_f c to the i and f gates,
    p_o c' (the new cell state) to o; clip > 0 clamps every gate's pre-activation to +-clip."""
    w_in = np.asarray(w_input, np.float64).reshape(-1, np.shape(w_input)[-1])
    w_rec = np.asarray(w_recurrent, np.float64).reshape(-1, np.shape(w_recurrent)[-1])
    pre = np.asarray(x, np.float64) @ w_in.T + np.asarray(bias, np.float64).reshape(-1)
    h, c = np.asarray(h0, np.float64), np.asarray(c0, np.float64)
    out = np.empty((*pre.shape[:2], h.shape[-1]))
    steps = pre.shape[1]
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        v = pre[:, t] + h @ w_rec.T
        gates = np.split(np.clip(v, -clip, clip) if clip > 0 else v, len(bias), axis=-1)
        peeps = list(np.zeros((len(bias), 1)) if peephole is None else np.asarray(peephole, np.float64))
        if len(gates) == 3:                      # CIFG: no input gate
            gates.insert(0, np.zeros_like(v[..., :c.shape[-1]]))
            peeps.insert(0, np.zeros(1))
        (i_g, f_g, g_g, o_g), (p_i, p_f, _, p_o) = gates, peeps
        f_s = _sigmoid(f_g + p_f * c)
        i_s = 1 - f_s if len(bias) == 3 else _sigmoid(i_g + p_i * c)
        c = f_s * c + i_s * np.tanh(g_g)
        h = _sigmoid(o_g + p_o * c) * np.tanh(c)
        out[:, t] = h
    return out.astype(np.float32), h.astype(np.float32), c.astype(np.float32)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))
