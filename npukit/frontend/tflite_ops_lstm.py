"""TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (int8, TFLite's 8x8_16 integer path) -> one IR LSTM node.

The operator's 20 or 24 inputs: x, input->gate weights (1-4), recurrent->gate weights (5-8),
peephole weights (9-11), gate biases (12-15), projection weights and bias (16, 17), the
variable hidden and cell states (18, 19), layer-norm coefficients (20-23); its intermediate 4
carries the hidden state's quantisation. The four gates' weights are stacked (gate order
i, f, g, o). The variable states become persistent graph variables (Graph.variables, initial
value the reset one: the hidden zero point, cell 0, or the tensor's buffer); the node's final
hidden and cell states are copied back into them, so consecutive runs continue the sequence
as consecutive invokes of LiteRT's interpreter do (`reset_state` starts over). A time-major
sequence is transposed around the node.
Refused (the host runs them): CIFG, peephole, layer norm, projection, diagonal recurrent weights.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, LstmAttrs, Node, Op, QParams, SliceAttrs, Tensor, TransposeAttrs
from . import tflite_read as rd
from .tflite_ops import converter


def _stack(cv, indices: list[int], what: str, dtype) -> tuple[np.ndarray, tuple[float, ...]]:
    arrays, scales = [], []
    for i in indices:
        data = cv.const(i) if i >= 0 else None
        if data is None or np.asarray(data).dtype != dtype:
            raise UnsupportedOpError(f"{cv.where()}: {what} must be constant {np.dtype(dtype).name}")
        q = rd.qparams(cv.tfl_tensor(i))
        if dtype == np.int8 and (q is None or len(q.scale) != 1 or q.zero_point != (0,)):
            raise UnsupportedOpError(f"{cv.where()}: {what} must be quantised per tensor, symmetric")
        arrays.append(np.asarray(data))
        scales.append(q.scale[0] if q is not None else 1.0)
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != (2 if dtype == np.int8 else 1):
        raise UnsupportedOpError(f"{cv.where()}: {what} of shapes {[a.shape for a in arrays]}")
    return np.stack(arrays), tuple(scales)


def initial_state(cv, i: int, shape: tuple[int, ...], dtype, name: str) -> str:
    """The variable state tensor as a persistent graph variable (its reset value as the
    initial one)."""
    q = rd.qparams(cv.tfl_tensor(i)) if i >= 0 else None
    if q is None or rd.np_dtype(cv.tfl_tensor(i), i) != dtype or len(q.scale) != 1 or \
            int(np.prod(rd.shape(cv.tfl_tensor(i)))) != int(np.prod(shape)):
        raise UnsupportedOpError(f"{cv.where()}: the {name} state must be a quantised {np.dtype(dtype).name} "
                                 f"tensor of {int(np.prod(shape))} elements")
    data = cv.const(i)
    init = np.full(shape, q.zp, dtype) if data is None else np.asarray(data, dtype).reshape(shape)
    var = cv._unique(rd.tensor_name(cv.tfl_tensor(i), i))
    cv.tensors[var] = Tensor(var, shape, DType.of(init), None, q)
    cv.variables[var] = init
    return var


def _const(cv, base: str, data: np.ndarray, quant: QParams | None) -> str:
    name = cv._unique(base)
    cv.tensors[name] = Tensor(name, data.shape, DType.of(data), data, quant)
    return name


@converter("UNIDIRECTIONAL_SEQUENCE_LSTM")
def unidirectional_sequence_lstm(cv, op) -> None:
    ins = [int(i) for i in op.inputs]
    o = op.builtinOptions
    if len(ins) not in (20, 24):
        raise UnsupportedOpError(f"{cv.where()}: {len(ins)} inputs (20 or 24 expected)")
    absent = {1: "CIFG (no input gate)"}
    present = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection",
               **{k: "layer norm" for k in range(20, len(ins))}}
    for k, what in absent.items():
        if ins[k] < 0:
            raise UnsupportedOpError(f"{cv.where()}: {what} is not supported")
    for k, what in present.items():
        if ins[k] >= 0:
            raise UnsupportedOpError(f"{cv.where()}: {what} is not supported")
    if rd.np_dtype(cv.tfl_tensor(ins[0]), ins[0]) != np.int8 or len(cv.shape(ins[0])) != 3:
        raise UnsupportedOpError(f"{cv.where()}: only the integer LSTM of a 3-D int8 sequence is supported")
    inter = [int(i) for i in (op.intermediates if op.intermediates is not None else [])]
    hidden_q = rd.qparams(cv.tfl_tensor(inter[4])) if len(inter) == 5 else None
    if hidden_q is None:
        raise UnsupportedOpError(f"{cv.where()}: the integer LSTM needs 5 intermediates, the last quantised")
    w_in, s_in = _stack(cv, ins[1:5], "input weights", np.int8)
    w_rec, s_rec = _stack(cv, ins[5:9], "recurrent weights", np.int8)
    bias, _ = _stack(cv, ins[12:16], "gate biases", np.int32)
    n_cell = w_in.shape[1]
    if w_rec.shape[1:] != (n_cell, n_cell) or bias.shape[1] != n_cell:
        raise UnsupportedOpError(f"{cv.where()}: recurrent weights {w_rec.shape[1:]} for {n_cell} cells")
    time_major = bool(o is not None and o.timeMajor)
    x = cv.name(ins[0])
    shape = cv.tensors[x].shape
    batch = shape[1] if time_major else shape[0]
    if time_major:
        x = cv.emit(Op.TRANSPOSE, [x], cv.fresh(f"{x}/batch_major", (shape[1], shape[0], shape[2]), x),
                    TransposeAttrs((1, 0, 2)), "/in")
    src = cv.op_source
    wq_in = _const(cv, f"{src}/w_input", w_in, QParams(s_in, (0,) * 4, 0))
    wq_rec = _const(cv, f"{src}/w_recurrent", w_rec, QParams(s_rec, (0,) * 4, 0))
    b = _const(cv, f"{src}/bias", bias, None)
    h0 = initial_state(cv, ins[18], (batch, n_cell), np.int8, "hidden")
    c0 = initial_state(cv, ins[19], (batch, n_cell), np.int16, "cell")
    attrs = LstmAttrs(hidden_q.s, hidden_q.zp, float(o.cellClip) if o is not None else 0.0)
    y = cv.name(op.outputs[0])
    ys = cv.tensors[y].shape
    yb = cv.fresh(f"{y}/batch_major", (ys[1], ys[0], ys[2]), y) if time_major else y
    h_t, c_t = cv.fresh(f"{h0}/next", cv.tensors[h0].shape, h0), cv.fresh(f"{c0}/next", cv.tensors[c0].shape, c0)
    name = f"{cv.op_label.lower()}_{cv.op_index}"
    cv.nodes.append(Node(Op.LSTM, name, (x, wq_in, wq_rec, b, h0, c0), (yb, h_t, c_t), attrs, source=(cv.op_source,)))
    for state, new in ((h0, h_t), (c0, c_t)):      # the state persists: written back after the step
        shape = cv.tensors[state].shape
        cv.emit(Op.SLICE, [new], state, SliceAttrs((0,) * len(shape), shape, (1,) * len(shape)), f"/{state}")
    if time_major:
        cv.emit(Op.TRANSPOSE, [yb], y, TransposeAttrs((1, 0, 2)), "/out")
