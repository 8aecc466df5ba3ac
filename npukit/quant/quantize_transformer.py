"""Integer parameters of transformer nodes (MATMUL, LAYER_NORM, GELU, GATHER)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, Graph, Node, Op, Tensor
from ..kernels import kernels_transformer as kt
from ..kernels import kernels_vpu as kv

TRANSFORMER_OPS = {Op.MATMUL, Op.LAYER_NORM, Op.GELU, Op.GATHER}


def _out_dtype(t: Tensor):
    return np.int16 if t.dtype is DType.I16 else np.int8


def quantize_transformer_node(g: Graph, node: Node, tensors: dict[str, Tensor], remembered=None) -> Node:
    """`node` with its integer params; constant inputs are replaced in `tensors` by their
    integer form (int8 gather table, int16 gamma, int32 beta). `remembered(key, make)`: the
    caller's memo of `make()` (quantize.remembered), for the gather table."""
    out_t = tensors[node.outputs[0]]
    out = out_t.qp
    if node.op is Op.MATMUL:
        a, b = tensors[node.inputs[0]].qp, tensors[node.inputs[1]].qp
        return node.with_(params=kt.prepare_batch_matmul(a.s, a.zp, b.s, b.zp, out.s, out.zp,
                                                         _out_dtype(out_t)))
    if node.op is Op.LAYER_NORM:
        x = tensors[node.inputs[0]].qp
        gamma, beta = (g.tensors[n].const_data for n in node.inputs[1:3])
        p = kt.prepare_layer_norm(x.s, gamma, beta, node.attrs.epsilon, out.s, out.zp, _out_dtype(out_t))
        tensors[node.inputs[1]] = Tensor(node.inputs[1], p.gamma.shape, DType.I16, p.gamma)
        tensors[node.inputs[2]] = Tensor(node.inputs[2], p.beta.shape, DType.I32, p.beta)
        return node.with_(params=p)
    if node.op is Op.GELU:
        from .quantize import LutParams
        x_t = tensors[node.inputs[0]]
        x = x_t.qp
        if x_t.dtype is DType.I16:
            return node.with_(params=kt.gelu_lut16(x.s, x.zp, out.s, out.zp, node.attrs.approximate,
                                                   2 if out_t.dtype is DType.I16 else 1))
        if out_t.dtype is DType.I16:
            return node.with_(params=LutParams(kt.gelu_table_wide(x.s, x.zp, out.s, out.zp, node.attrs.approximate)))
        return node.with_(params=LutParams(kt.gelu_table(x.s, x.zp, out.s, out.zp, node.attrs.approximate)))
    table = node.inputs[0]          # GATHER: a float table at the output's scale; an int8 one
    data = g.tensors[table].const_data  # (TFLite) has the output's quantisation already
    if g.tensors[table].dtype is DType.F32:
        q = (remembered or (lambda key, make: make()))(("gather", data, out.s, out.zp),
                                                        lambda: kv.quantize(data, out.s, out.zp))
        tensors[table] = Tensor(table, data.shape, DType.I8, q, out)
    return node
