"""The integer LSTM's and GRU's parameters (kernels_lstm.prepare_lstm, kernels_gru.prepare_gru)
from the tensors' quantisation, as TFLite's converter quantises an LSTM: weights int8 symmetric
per gate, the input-side biases int32 at input x weight scale (the GRU's R_n bias at hidden x
R_n scale), constant initial states at the states' quantisation."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, Graph, Node, QParams, Tensor
from ..kernels import kernels_gru as kg
from ..kernels import kernels_lstm as kl


# A float model's LSTM sums its gates in Q4.11 (LSTM_GATE_Q4), not TFLite's Q3.12: the input part
# is saturated to the gate range before the recurrent part is added, and silero-vad-seq's input
# part reaches +-23 (BENCHMARKS.md, 2026-12-08).
FLOAT_MODEL_GATE_EXP = kl.GATE_EXP + 1


def _per_gate(name: str, w: np.ndarray) -> Tensor:
    """Gate-stacked weights [gates, C, K] as int8, symmetric, one scale per gate."""
    gates = w.shape[0]
    scales = np.maximum(np.abs(w).reshape(gates, -1).max(axis=1), 1e-8).astype(np.float32) / np.float32(127)
    q = np.clip(np.round(w / scales[:, None, None]), -127, 127).astype(np.int8)
    return Tensor(name, w.shape, DType.I8, q, QParams(tuple(map(float, scales)), (0,) * gates, 0))


def _per_gate16(name: str, p: np.ndarray) -> Tensor:
    """Peephole weights [gates, C] as int16, symmetric, one scale per gate (an all-zero gate 1)."""
    top = np.abs(p).max(axis=1)
    scales = np.where(top > 0, top / np.float32(32767), 1.0).astype(np.float32)
    q = np.clip(np.round(p / scales[:, None]), -32767, 32767).astype(np.int16)
    return Tensor(name, p.shape, DType.I16, q, QParams(tuple(map(float, scales)), (0,) * len(scales), 0))


def _int32(name: str, v: np.ndarray, scale) -> Tensor:
    q = np.clip(np.round(v / scale), -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
    return Tensor(name, v.shape, DType.I32, q)


def _state(name: str, data: np.ndarray, q: QParams, dtype) -> Tensor:
    """A constant initial state at the state's quantisation."""
    info = np.iinfo(dtype)
    codes = np.clip(np.round(data / q.s) + q.zp, info.min, info.max).astype(dtype)
    return Tensor(name, data.shape, DType.of(codes), codes, q)


def gru_params(g: Graph, node: Node, tensors: dict[str, Tensor]) -> kg.GruParams:
    x_name, w_name, r_name, b_name, rb_name, h_name = node.inputs
    xq, hq = tensors[x_name].qp, tensors[node.outputs[0]].qp
    for name in (w_name, r_name):
        if name not in tensors:
            tensors[name] = _per_gate(name, g.tensors[name].const_data)
    w_scales = np.asarray(tensors[w_name].qp.scale, np.float64)
    r_n = np.float64(np.float32(tensors[r_name].qp.scale[-1]))
    if b_name not in tensors:
        tensors[b_name] = _int32(b_name, g.tensors[b_name].const_data, np.float64(np.float32(xq.s)) * w_scales[:, None])
    if rb_name not in tensors:
        tensors[rb_name] = _int32(rb_name, g.tensors[rb_name].const_data, np.float64(np.float32(hq.s)) * r_n)
    if h_name not in tensors:
        tensors[h_name] = _state(h_name, g.tensors[h_name].const_data, hq, np.int8)
    kinds = [tensors[n].dtype for n in (x_name, h_name, *node.outputs)]
    if any(k is not DType.I8 for k in kinds) or tensors[h_name].qp != hq:
        raise UnsupportedOpError(f"{node.name}: the integer GRU needs int8 input and hidden states at one "
                                 f"quantisation, got {[k.value for k in kinds]}")
    q = kg.GruQuant(xq.s, xq.zp, tensors[w_name].qp.scale, tensors[r_name].qp.scale, hq.s, hq.zp)
    return kg.prepare_gru(q, tensors[b_name].const_data, tensors[rb_name].const_data,
                          node.attrs.linear_before_reset, kg.cell_mode(node.attrs.rnn))


def lstm_params(g: Graph, node: Node, tensors: dict[str, Tensor]) -> kl.LstmParams:
    """TFLite's integer LSTM Prepare from the tensors' quantisation. A float graph's LSTM
    (ONNX) is quantised here as TFLite's converter does it: weights int8 symmetric per gate,
    biases int32 at input scale x weight scale, the hidden state at the output's quantisation
    (hidden_scale 0), constant initial states at the states' quantisation."""
    a = node.attrs
    hq = tensors[node.outputs[0]].qp if a.hidden_scale == 0 else QParams.per_tensor(a.hidden_scale, a.hidden_zp)
    xq = tensors[node.inputs[0]].qp
    _, w_name, r_name, b_name, h_name, c_name = node.inputs[:6]
    float_model = w_name not in tensors          # (a TFLite model's LSTM comes with its int8 weights)
    for name in (w_name, r_name):
        if name not in tensors:
            tensors[name] = _per_gate(name, g.tensors[name].const_data)
    w_scales = np.asarray(tensors[w_name].qp.scale, np.float64)
    if b_name not in tensors:
        tensors[b_name] = _int32(b_name, g.tensors[b_name].const_data, np.float64(np.float32(xq.s)) * w_scales[:, None])
    cq = next((tensors[n].qp for n in (c_name, *node.outputs[2:]) if n in tensors and tensors[n].quant), None)
    for name, q, dtype in ((h_name, hq, np.int8), (c_name, cq, np.int16)):
        if name not in tensors:
            if q is None:
                raise UnsupportedOpError(f"{node.name}: a constant cell state with no quantised cell state to follow")
            tensors[name] = _state(name, g.tensors[name].const_data, q, dtype)
    if a.peephole and node.inputs[6] not in tensors:             # a float graph's (ONNX) peephole weights
        tensors[node.inputs[6]] = _per_gate16(node.inputs[6], g.tensors[node.inputs[6]].const_data)
    x, w_in, w_rec, bias, h0, c0 = (tensors[n] for n in node.inputs[:6])
    extra = iter(tensors[n] for n in node.inputs[6:])             # TFLite's variants (LstmAttrs)
    peep = next(extra) if a.peephole else None
    norm = next(extra) if a.layer_norm else None
    proj, proj_b = (next(extra), next(extra)) if a.projection else (None, None)
    kinds = [tensors[n].dtype for n in (node.inputs[0], node.inputs[4], node.outputs[0], *node.outputs[1:2])]
    if any(k is not DType.I8 for k in kinds) or any(tensors[n].dtype is not DType.I16 for n in (c_name, *node.outputs[2:])):
        raise UnsupportedOpError(f"{node.name}: the integer LSTM needs int8 input and hidden states and int16 cell "
                                 f"states, got {[k.value for k in kinds]}")
    lq = kl.LstmQuant(xq.s, xq.zp, w_in.qp.scale, w_rec.qp.scale, h0.qp.s, h0.qp.zp, hq.s, hq.zp, c0.qp.s,
                      a.cell_clip, len(w_in.qp.scale) == 3, a.gate_scales, peep.qp.scale if peep else (),
                      norm.qp.scale if norm else (), proj.qp.s if proj else 0.0, a.proj_clip, a.gate_clip)
    peep_w, norm_w, proj_w, proj_bias = (None if t is None else t.const_data for t in (peep, norm, proj, proj_b))
    return kl.prepare_lstm(lq, w_in.const_data, w_rec.const_data, bias.const_data, peep_w, norm_w, proj_w, proj_bias,
                           gate_exp=FLOAT_MODEL_GATE_EXP if float_model and not a.layer_norm else kl.GATE_EXP)
