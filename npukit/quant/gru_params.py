"""The integer GRU's parameters (kernels_gru.prepare_gru) from the tensors' quantisation, as
the LSTM's are quantised (quantize._lstm_params): weights int8 symmetric per gate, the input-side
biases int32 at input x weight scale, R_n's bias at hidden x R_n scale, the hidden state (in,
out and the output sequence, one shared-scale group) at the output's quantisation."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, Graph, Node, QParams, Tensor
from ..kernels import kernels_gru as kg


def _per_gate(name: str, w: np.ndarray) -> Tensor:
    scales = np.maximum(np.abs(w).reshape(3, -1).max(axis=1), 1e-8).astype(np.float32) / np.float32(127)
    q = np.clip(np.round(w / scales[:, None, None]), -127, 127).astype(np.int8)
    return Tensor(name, w.shape, DType.I8, q, QParams(tuple(map(float, scales)), (0,) * 3, 0))


def _int32(name: str, v: np.ndarray, scale) -> Tensor:
    q = np.clip(np.round(v / scale), -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
    return Tensor(name, v.shape, DType.I32, q)


def gru_params(g: Graph, node: Node, tensors: dict[str, Tensor]) -> kg.GruParams:
    x_name, w_name, r_name, b_name, rb_name, h_name = node.inputs
    xq, hq = tensors[x_name].qp, tensors[node.outputs[0]].qp
    for name in (w_name, r_name):
        if name not in tensors:
            tensors[name] = _per_gate(name, g.tensors[name].const_data)
    w_scales = np.asarray(tensors[w_name].qp.scale, np.float64)
    r_n = np.float64(np.float32(tensors[r_name].qp.scale[2]))
    if b_name not in tensors:
        tensors[b_name] = _int32(b_name, g.tensors[b_name].const_data, np.float64(np.float32(xq.s)) * w_scales[:, None])
    if rb_name not in tensors:
        tensors[rb_name] = _int32(rb_name, g.tensors[rb_name].const_data, np.float64(np.float32(hq.s)) * r_n)
    if h_name not in tensors:
        data = g.tensors[h_name].const_data
        codes = np.clip(np.round(data / hq.s) + hq.zp, -128, 127).astype(np.int8)
        tensors[h_name] = Tensor(h_name, data.shape, DType.I8, codes, hq)
    kinds = [tensors[n].dtype for n in (x_name, h_name, *node.outputs)]
    if any(k is not DType.I8 for k in kinds) or tensors[h_name].qp != hq:
        raise UnsupportedOpError(f"{node.name}: the integer GRU needs int8 input and hidden states at one "
                                 f"quantisation, got {[k.value for k in kinds]}")
    q = kg.GruQuant(xq.s, xq.zp, tensors[w_name].qp.scale, tensors[r_name].qp.scale, hq.s, hq.zp)
    return kg.prepare_gru(q, tensors[b_name].const_data, tensors[rb_name].const_data,
                          node.attrs.linear_before_reset)
