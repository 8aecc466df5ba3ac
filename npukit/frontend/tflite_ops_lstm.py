"""TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (int8, TFLite's 8x8_16 integer path) -> one IR LSTM node.

The operator's 20 or 24 inputs: x, input->gate weights (1-4), recurrent->gate weights (5-8),
peephole weights (9-11), gate biases (12-15), projection weights and bias (16, 17), the
variable hidden and cell states (18, 19), layer-norm coefficients (20-23); its intermediate 4
carries the hidden state's quantisation, intermediates 0-3 the gates' with layer norm. The
gates' weights are stacked (gate order i, f, g, o; f, g, o for CIFG, whose input gate operands
are absent), as are the peephole weights (the g gate's row zero) and layer-norm coefficients,
each an extra input of the IR LSTM (LstmAttrs). The variable states become persistent graph variables (Graph.variables, initial
value the reset one: the hidden zero point, cell 0, or the tensor's buffer); the node's final
hidden and cell states are copied back into them, so consecutive runs continue the sequence
as consecutive invokes of LiteRT's interpreter do (`reset_state` starts over). A time-major
sequence is transposed around the node.
Refused (the host runs them): diagonal recurrent weights, peephole with a projection to other
than n_cell outputs (LiteRT indexes the peephole's cell state by output there).
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
        if dtype != np.int32 and (q is None or len(q.scale) != 1 or q.zero_point != (0,)):
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
    cifg = ins[1] < 0
    gates = [2, 3, 4] if cifg else [1, 2, 3, 4]                    # the input->gate weights present
    peephole = ins[10] >= 0
    norm = len(ins) == 24 and ins[21] >= 0
    projection = ins[16] >= 0
    if rd.np_dtype(cv.tfl_tensor(ins[0]), ins[0]) != np.int8 or len(cv.shape(ins[0])) != 3:
        raise UnsupportedOpError(f"{cv.where()}: only the integer LSTM of a 3-D int8 sequence is supported")
    inter = [int(i) for i in (op.intermediates if op.intermediates is not None else [])]
    qs = [rd.qparams(cv.tfl_tensor(i)) for i in inter]
    if len(qs) != 5 or qs[4] is None or (norm and any(qs[k - 1] is None for k in gates)):
        raise UnsupportedOpError(f"{cv.where()}: the integer LSTM needs 5 quantised intermediates")
    hidden_q = qs[4]
    w_in, s_in = _stack(cv, [ins[k] for k in gates], "input weights", np.int8)
    w_rec, s_rec = _stack(cv, [ins[k + 4] for k in gates], "recurrent weights", np.int8)
    bias, _ = _stack(cv, [ins[k + 11] for k in gates], "gate biases", np.int32)
    n_cell, n_out = w_in.shape[1], w_rec.shape[2]
    if w_rec.shape[1] != n_cell or bias.shape[1] != n_cell or (n_out != n_cell and not projection):
        raise UnsupportedOpError(f"{cv.where()}: recurrent weights {w_rec.shape[1:]} for {n_cell} cells")
    if peephole and projection and n_out != n_cell:
        raise UnsupportedOpError(f"{cv.where()}: peephole with a projection to {n_out} of {n_cell} cells is not "
                                 "supported")
    extra: list[tuple[np.ndarray, QParams | None]] = []
    if peephole:                                                  # i, f, o (f, o): the g gate's row zero
        w_c, s_c = _stack(cv, [ins[k] for k in (9, 10, 11) if not (cifg and k == 9)], "peephole weights",
                          np.int16)
        rows, scales = list(w_c), list(s_c)
        rows.insert(len(rows) - 1, np.zeros(n_cell, np.int16))
        scales.insert(len(scales) - 1, 1.0)
        extra.append((np.stack(rows), QParams(tuple(scales), (0,) * len(scales), 0)))
    if norm:
        w_n, s_n = _stack(cv, [ins[k + 19] for k in gates], "layer-norm coefficients", np.int16)
        extra.append((w_n, QParams(s_n, (0,) * len(s_n), 0)))
    if projection:
        w_p, s_p = _stack(cv, [ins[16]], "projection weights", np.int8)
        b_p = np.zeros(n_out, np.int32) if ins[17] < 0 else _stack(cv, [ins[17]], "projection bias", np.int32)[0][0]
        extra += [(w_p[0], QParams.per_tensor(s_p[0], 0)), (b_p, None)]
    time_major = bool(o is not None and o.timeMajor)
    x = cv.name(ins[0])
    shape = cv.tensors[x].shape
    batch = shape[1] if time_major else shape[0]
    if time_major:
        x = cv.emit(Op.TRANSPOSE, [x], cv.fresh(f"{x}/batch_major", (shape[1], shape[0], shape[2]), x),
                    TransposeAttrs((1, 0, 2)), "/in")
    src = cv.op_source
    wq_in = _const(cv, f"{src}/w_input", w_in, QParams(s_in, (0,) * len(gates), 0))
    wq_rec = _const(cv, f"{src}/w_recurrent", w_rec, QParams(s_rec, (0,) * len(gates), 0))
    b = _const(cv, f"{src}/bias", bias, None)
    h0 = initial_state(cv, ins[18], (batch, n_out), np.int8, "hidden")
    c0 = initial_state(cv, ins[19], (batch, n_cell), np.int16, "cell")
    extras = tuple(_const(cv, f"{src}/{what}", data, q) for (data, q), what in
                   zip(extra, [w for w, on in (("peephole", peephole), ("layer_norm", norm), ("projection", projection),
                                               ("projection_bias", projection)) if on]))
    attrs = LstmAttrs(hidden_q.s, hidden_q.zp, float(o.cellClip) if o is not None else 0.0, False, peephole, norm,
                      projection, float(o.projClip) if o is not None and projection else 0.0,
                      tuple(q.s for q in (qs[k - 1] for k in gates) if q is not None) if norm else ())
    y = cv.name(op.outputs[0])
    ys = cv.tensors[y].shape
    yb = cv.fresh(f"{y}/batch_major", (ys[1], ys[0], ys[2]), y) if time_major else y
    h_t, c_t = cv.fresh(f"{h0}/next", cv.tensors[h0].shape, h0), cv.fresh(f"{c0}/next", cv.tensors[c0].shape, c0)
    name = f"{cv.op_label.lower()}_{cv.op_index}"
    cv.nodes.append(Node(Op.LSTM, name, (x, wq_in, wq_rec, b, h0, c0, *extras), (yb, h_t, c_t), attrs,
                         source=(cv.op_source,)))
    for state, new in ((h0, h_t), (c0, c_t)):      # the state persists: written back after the step
        shape = cv.tensors[state].shape
        cv.emit(Op.SLICE, [new], state, SliceAttrs((0,) * len(shape), shape, (1,) * len(shape)), f"/{state}")
    if time_major:
        cv.emit(Op.TRANSPOSE, [yb], y, TransposeAttrs((1, 0, 2)), "/out")
