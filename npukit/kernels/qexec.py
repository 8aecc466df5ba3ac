"""Integer execution of one quantised node: the graph-level reference and the host CPU use it."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, Node, Op, QParams
from . import kernels_gru as kg
from . import kernels_lstm as kl
from . import kernels_mxu as kx
from . import kernels_relu16 as kr
from . import kernels_vpu as kv
from . import kernels_vpu16 as k16
from . import kernels_vpu_compare as kc
from . import kernels_wide as kw
from .host_float import run_quantised as run_host_float
from .host_tflite import run_quantised as run_host_tflite
from .kernels_transformer import run_transformer_node


def run_qoutputs(node: Node, ins: list[np.ndarray], in_q: list[QParams | None]) -> list[np.ndarray]:
    """Every output of `node` (a host node has several, computed by one run)."""
    if node.op is Op.HOST_FLOAT:
        return run_host_float(node.attrs, node.params, ins, in_q)
    if node.op is Op.HOST_TFLITE:
        return run_host_tflite(node.attrs, node.params, ins, in_q)
    if node.op is Op.LSTM:          # the output sequence, final hidden and cell states
        return list(kl.lstm_sequence(x=ins[0], h0=ins[4], c0=ins[5], w_input=ins[1], w_recurrent=ins[2],
                                     p=node.params, reverse=node.attrs.reverse))[:len(node.outputs)]
    if node.op is Op.GRU:           # the output sequence and final hidden state
        return list(kg.gru_sequence(ins[0], ins[5], ins[1], ins[2], node.params,
                                         node.attrs.reverse))[:len(node.outputs)]
    return [run_qnode(node, ins, in_q)]


def run_qnode(node: Node, ins: list[np.ndarray], in_q: list[QParams | None],
              out_dtype: DType = DType.I8) -> np.ndarray:
    op, a, p = node.op, node.attrs, node.params
    x = ins[0]
    if op is Op.CONV2D and np.asarray(x).dtype == np.int16:     # 16x8: two byte passes on the MXU
        return kw.conv2d_16x8(x, ins[1], ins[2] if len(ins) > 2 else None, a, p)
    if op is Op.MAGNITUDE:
        return kw.magnitude_pairs(x, a.axis, p)
    if op is Op.LSTM:
        return kl.lstm_sequence(x, ins[4], ins[5], ins[1], ins[2], p, a.reverse)[0]
    if op is Op.GRU:
        return kg.gru_sequence(x, ins[5], ins[1], ins[2], p, a.reverse)[0]
    if op is Op.CONV2D:
        acc = kx.conv2d_acc(x, ins[1], a, p.input_zp)
        return kx.conv_output(acc, ins[2] if len(ins) > 2 else None, p)
    if op is Op.FULLY_CONNECTED:
        acc = kx.fully_connected_acc(x, ins[1], p.input_zp)
        bias = ins[2] if len(ins) > 2 else None
        if p.act_max > 127 or np.asarray(x).dtype == np.int16:      # 16x8: int64 accumulators
            return kx.fc_output_wide(acc, bias, p, np.int16 if p.act_max > 127 else np.int8)
        return kx.fc_output(acc, bias, p)
    if op in (Op.ADD, Op.SUB):       # int8 or int16 inputs; an int16 output when its range says so
        return kv.add(x, ins[1], p, np.int16 if p.act_max > 127 else np.int8)
    if op is Op.MUL:
        return kv.mul(x, ins[1], p, np.int16 if p.act_max > 127 else np.int8)
    if op is Op.MAXIMUM:
        return kv.maximum(x, ins[1])
    if op is Op.MINIMUM:
        return kv.minimum(x, ins[1])
    if op is Op.MAX_POOL:
        return kv.max_pool(x, a, p.act_min, p.act_max)
    if op is Op.AVG_POOL:
        return kv.avg_pool(x, a, p.act_min, p.act_max)
    if op is Op.MEAN:
        return kv.mean(x, a.axes, p, keepdims=a.keepdims, dtype=np.asarray(x).dtype)
    if op is Op.REDUCE_SUM:
        return kv.reduce_sum(x, a.axes, p, keepdims=a.keepdims)
    if op is Op.COMPARE:
        return kc.compare(x, ins[1], p)
    if op is Op.LOGICAL:
        return kc.logical(x, ins[1], p)
    if op is Op.WHERE:              # the selected operand's code: the three share quantisation
        return np.where(np.asarray(x) != 0, ins[1], ins[2])
    if op is Op.ARG_MAX:
        return kv.arg_max(x, a.axis, a.last, a.keepdims, np.dtype(a.dtype), a.smallest)
    if op in (Op.REDUCE_MAX, Op.REDUCE_MIN):
        return kv.reduce_extreme(x, a.axes, op is Op.REDUCE_MAX, keepdims=a.keepdims)
    if isinstance(p, k16.Sigmoid16Params):
        return k16.sigmoid16(x, p)
    if isinstance(p, k16.Softmax16Params):
        if a.axis not in (-1, x.ndim - 1):
            raise UnsupportedOpError(f"{node.name}: softmax over axis {a.axis} (only the last axis)")
        return k16.softmax16(x, p)
    if isinstance(p, k16.Lut16Params) and op in (Op.HARD_SWISH, Op.UNARY):
        return k16.lut16(x, p)
    if isinstance(p, kr.Relu16Params):
        return kr.relu16(x, p)
    if op in (Op.CLAMP, Op.LEAKY_RELU, Op.SIGMOID, Op.TANH, Op.HARD_SWISH, Op.UNARY, Op.LOGICAL_NOT):
        return kv.lut(x, p.table)
    if op is Op.PRELU:
        return kv.prelu(x, ins[1], p, np.asarray(x).dtype)
    if op is Op.SOFTMAX:
        if a.axis not in (-1, x.ndim - 1):
            raise UnsupportedOpError(f"{node.name}: softmax over axis {a.axis} (only the last axis)")
        return kv.softmax(x, p)
    if op is Op.CONCAT:
        return np.concatenate(ins, axis=a.axis)
    if op is Op.SLICE:
        return x[tuple(slice(b, e, s) for b, e, s in zip(a.begin, a.end, a.step))]
    if op is Op.PAD and a.mode == "reflect":
        return np.pad(x, a.pads, mode="reflect")
    if op is Op.PAD:
        q = in_q[0]
        assert q is not None, f"{node.name}: an integer PAD of an unquantised input"
        return np.pad(x, a.pads, constant_values=kv.pad_code(a.value, q.s, q.zp))
    if op is Op.RESHAPE:
        return x.reshape(a.shape)
    if op is Op.TRANSPOSE:
        return np.ascontiguousarray(x.transpose(a.perm))
    if op is Op.RESIZE:
        fn = kv.resize_bilinear if a.mode == "bilinear" else kv.resize_nearest
        return fn(x, a.size, a.align_corners, a.half_pixel_centers)
    if op in (Op.MATMUL, Op.LAYER_NORM, Op.GELU, Op.GATHER):
        return run_transformer_node(node, ins)
    if op is Op.HOST_FLOAT:
        return run_host_float(a, p, ins, in_q)[0]
    if op is Op.HOST_TFLITE:
        return run_host_tflite(a, p, ins, in_q)[0]
    if op is Op.QUANTIZE and p is not None:
        return kv.requantize(x, p, np.dtype(getattr(a, "dtype", "int8")))
    raise UnsupportedOpError(f"{node.name}: no integer kernel for {op.value}")
