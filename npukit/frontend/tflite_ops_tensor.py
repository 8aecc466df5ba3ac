"""TFLite data-movement and reduction operators -> IR: reshape, pad (constant, reflect), slicing, split, pack,
concatenation, transpose, depth-to-space / space-to-depth, resize, mean, softmax, quantize / dequantize,
gather of constant-table rows."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import (ArgMaxAttrs, ConcatAttrs, GatherAttrs, MeanAttrs, Op, PadAttrs, QuantizeAttrs, ResizeAttrs,
                        SliceAttrs, SoftmaxAttrs, TransposeAttrs)
from ..ir.shapes import slice_len
from .depth_space import depth_space_plan
from .index_runs import MAX_RUNS, index_runs
from .tflite_ops import _act, _same_quant, converter


@converter("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def reshape(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    _same_quant(cv, x, out)
    cv.reshape(x, cv.tensors[out].shape, out, suffix="")


@converter("PAD", "PADV2")
def pad(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    pads = cv.need_const(op.inputs[1], "PAD paddings").reshape(-1, 2)
    value = 0.0
    if cv.op_label == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        code = cv.need_const(op.inputs[2], "PADV2 value").reshape(-1)[0]
        q = cv.tensors[x].quant
        value = float(code) if q is None else float(np.float32(q.scale[0]) * (int(code) - q.zero_point[0]))
    _same_quant(cv, x, out)
    cv.emit(Op.PAD, [x], out, PadAttrs(tuple((int(a), int(b)) for a, b in pads), value))


@converter("MIRROR_PAD")
def mirror_pad(cv, op) -> None:
    """REFLECT mode (the edge row not repeated) is the NPU's reflect padding; SYMMETRIC is not."""
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    if int(op.builtinOptions.mode) != 0:
        raise UnsupportedOpError(f"{cv.where()}: SYMMETRIC mirror padding")
    pads = tuple((int(a), int(b)) for a, b in cv.need_const(op.inputs[1], "MIRROR_PAD paddings").reshape(-1, 2))
    if any(p >= d for (p0, p1), d in zip(pads, cv.tensors[x].shape) for p in (p0, p1)):
        raise UnsupportedOpError(f"{cv.where()}: reflect padding must be shorter than the axis")
    _same_quant(cv, x, out)
    cv.emit(Op.PAD, [x], out, PadAttrs(pads, 0.0, "reflect"))


def _slice(cv, x: str, out: str, begin, end, step, suffix: str = "") -> None:
    """A SLICE into `out`, through a reshape when `out` drops (shrinks) axes."""
    shape = cv.tensors[x].shape
    full = tuple(slice_len(d, b, e, s) for d, b, e, s in zip(shape, begin, end, step))
    target = out if cv.tensors[out].shape == full else cv.fresh(f"{out}/slice", full, out)
    cv.emit(Op.SLICE, [x], target, SliceAttrs(tuple(begin), tuple(end), tuple(step)), suffix)
    if target != out:
        cv.reshape(target, cv.tensors[out].shape, out, suffix=suffix + "/shrink")


@converter("STRIDED_SLICE")
def strided_slice(cv, op) -> None:
    o = op.builtinOptions
    if o.ellipsisMask or o.newAxisMask:
        raise UnsupportedOpError(f"{cv.where()}: STRIDED_SLICE with ellipsis or new-axis masks")
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    shape = cv.tensors[x].shape
    b, e, s = (cv.need_const(i, "STRIDED_SLICE bounds").astype(np.int64).tolist() for i in op.inputs[1:4])
    if len(b) != len(shape):
        raise UnsupportedOpError(f"{cv.where()}: STRIDED_SLICE over fewer axes than the input has")
    begin, end, step = [], [], []
    for ax, d in enumerate(shape):
        st = s[ax]
        if st == 0:
            raise ModelError(f"{cv.where()}: STRIDED_SLICE step 0")
        lo, hi = b[ax], e[ax] + (b[ax] if o.offset else 0)
        if o.beginMask >> ax & 1:
            lo = 0 if st > 0 else d - 1
        if o.endMask >> ax & 1:
            hi = d if st > 0 else -d - 1
        if o.shrinkAxisMask >> ax & 1:
            lo = lo + d if lo < 0 else lo
            hi, st = lo + 1, 1
        begin.append(lo)
        end.append(hi)
        step.append(st)
    _same_quant(cv, x, out)
    _slice(cv, x, out, begin, end, step)


@converter("REVERSE_V2")
def reverse(cv, op) -> None:
    """The axes listed (a constant) read backwards: a SLICE of step -1 on each."""
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    shape = cv.tensors[x].shape
    axes = {int(a) % len(shape) for a in cv.need_const(op.inputs[1], "REVERSE_V2 axes").ravel()} if shape else set()
    _same_quant(cv, x, out)
    _slice(cv, x, out, [d - 1 if a in axes else 0 for a, d in enumerate(shape)],
           [-d - 1 if a in axes else d for a, d in enumerate(shape)], [-1 if a in axes else 1 for a in range(len(shape))])


@converter("SLICE")
def slice_op(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    shape = cv.tensors[x].shape
    b = cv.need_const(op.inputs[1], "SLICE begin").astype(np.int64).tolist()
    n = cv.need_const(op.inputs[2], "SLICE size").astype(np.int64).tolist()
    end = [d if k < 0 else lo + k for d, lo, k in zip(shape, b, n)]
    _same_quant(cv, x, out)
    _slice(cv, x, out, b, end, [1] * len(shape))


def _split(cv, op, x: str, axis: int, sizes: list[int]) -> None:
    shape = cv.tensors[x].shape
    axis %= len(shape)
    if sum(sizes) != shape[axis]:
        raise ModelError(f"{cv.where()}: split sizes {sizes} do not add up to {shape[axis]}")
    start = 0
    for k, (size, i) in enumerate(zip(sizes, op.outputs)):
        out = cv.name(i)
        _same_quant(cv, x, out)
        begin = [start if a == axis else 0 for a in range(len(shape))]
        end = [start + size if a == axis else d for a, d in enumerate(shape)]
        _slice(cv, x, out, begin, end, [1] * len(shape), suffix=f"/{k}")
        start += size


@converter("SPLIT")
def split(cv, op) -> None:
    axis = int(cv.need_const(op.inputs[0], "SPLIT axis").reshape(-1)[0])
    x = cv.name(op.inputs[1])
    n = int(op.builtinOptions.numSplits)
    dim = cv.tensors[x].shape[axis % len(cv.tensors[x].shape)]
    if dim % n:
        raise ModelError(f"{cv.where()}: axis of size {dim} does not split into {n}")
    _split(cv, op, x, axis, [dim // n] * n)


@converter("SPLIT_V")
def split_v(cv, op) -> None:
    x = cv.name(op.inputs[0])
    sizes = cv.need_const(op.inputs[1], "SPLIT_V sizes").astype(np.int64).tolist()
    axis = int(cv.need_const(op.inputs[2], "SPLIT_V axis").reshape(-1)[0])
    dim = cv.tensors[x].shape[axis % len(cv.tensors[x].shape)]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = dim - (sum(sizes) + 1)
    _split(cv, op, x, axis, sizes)


@converter("CONCATENATION")
def concatenation(cv, op) -> None:
    if _act(cv, op.builtinOptions) is not None:
        raise UnsupportedOpError(f"{cv.where()}: CONCATENATION with a fused activation")
    ins = [cv.name(i) for i in op.inputs]
    out = cv.name(op.outputs[0])
    for x in ins:
        if cv.tensors[x].is_const and cv.quantised:
            raise UnsupportedOpError(f"{cv.where()}: constant CONCATENATION operand {x!r}")
        _same_quant(cv, x, out)
    axis = int(op.builtinOptions.axis) % len(cv.tensors[out].shape)
    cv.emit(Op.CONCAT, ins, out, ConcatAttrs(axis))


@converter("PACK")
def pack(cv, op) -> None:
    out = cv.name(op.outputs[0])
    axis = int(op.builtinOptions.axis) % len(cv.tensors[out].shape)
    parts = []
    for k, i in enumerate(op.inputs):
        x = cv.name(i)
        _same_quant(cv, x, out)
        shape = cv.tensors[x].shape
        parts.append(cv.reshape(x, shape[:axis] + (1,) + shape[axis:], suffix=f"/pack{k}"))
    cv.emit(Op.CONCAT, parts, out, ConcatAttrs(axis))


@converter("TRANSPOSE")
def transpose(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    perm = tuple(int(p) for p in cv.need_const(op.inputs[1], "TRANSPOSE permutation").reshape(-1))
    _same_quant(cv, x, out)
    cv.emit(Op.TRANSPOSE, [x], out, TransposeAttrs(perm))


@converter("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def depth_to_space(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    _same_quant(cv, x, out)
    steps, shape = depth_space_plan(cv.tensors[x].shape, int(op.builtinOptions.blockSize),
                                    cv.op_label == "DEPTH_TO_SPACE", what=cv.where())
    if shape != cv.tensors[out].shape:
        raise ModelError(f"{cv.where()}: output shape {cv.tensors[out].shape}, expected {shape}")
    for k, step in enumerate(steps):
        r = cv.reshape(x, step.shape, suffix=f"/block{k}")
        t = cv.fresh(f"{r}/swap", tuple(step.shape[p] for p in step.perm), r)
        x = cv.emit(Op.TRANSPOSE, [r], t, TransposeAttrs(step.perm), suffix=f"/swap{k}")
    cv.reshape(x, shape, out, suffix="")


@converter("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def resize(cv, op) -> None:
    o = op.builtinOptions
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    hw = cv.need_const(op.inputs[1], "resize size").reshape(-1)
    size = int(hw[0]), int(hw[1])
    mode = "bilinear" if cv.op_label == "RESIZE_BILINEAR" else "nearest"
    _same_quant(cv, x, out)
    cv.emit(Op.RESIZE, [x], out, ResizeAttrs(size, mode, bool(o.alignCorners), bool(o.halfPixelCenters)))


_REDUCTIONS = {"MEAN": Op.MEAN, "SUM": Op.REDUCE_SUM, "REDUCE_MAX": Op.REDUCE_MAX, "REDUCE_MIN": Op.REDUCE_MIN}


@converter(*_REDUCTIONS)
def mean(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    kind = _REDUCTIONS[cv.op_label]
    rank = len(cv.tensors[x].shape)
    axes = tuple(sorted({int(a) % rank for a in cv.need_const(op.inputs[1], f"{cv.op_label} axes").reshape(-1)}))
    keep = bool(op.builtinOptions.keepDims) if op.builtinOptions is not None else False
    if kind in (Op.REDUCE_MAX, Op.REDUCE_MIN):
        _same_quant(cv, x, out)
    xs = cv.tensors[x].shape
    kept = tuple(1 if i in axes else d for i, d in enumerate(xs))
    dropped = kept if keep else tuple(d for i, d in enumerate(xs) if i not in axes)
    global_pool = kind is Op.MEAN and not keep and axes == (1, 2) and rank == 4
    if not global_pool and dropped == cv.tensors[out].shape:
        cv.emit(kind, [x], out, MeanAttrs(axes, keep))
        return
    # the NPU's spatial MEAN of a global average pool keeps H, W as 1, and a reduction to a
    # scalar gives one element: dropping the kept axes is a free reshape
    pooled = cv.fresh(f"{out}/keepdims", kept, out)
    cv.emit(kind, [x], pooled, MeanAttrs(axes, True))
    cv.reshape(pooled, cv.tensors[out].shape, out, suffix="/squeeze")


@converter("ARG_MAX", "ARG_MIN")
def arg_max(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    rank = len(cv.tensors[x].shape)
    axis = int(cv.need_const(op.inputs[1], f"{cv.op_label} axis").reshape(-1)[0]) % rank
    dtype = cv.tensors[out].dtype.value
    if dtype not in ("int32", "int64"):
        raise UnsupportedOpError(f"{cv.where()}: {cv.op_label} to {dtype} indices")
    cv.emit(Op.ARG_MAX, [x], out, ArgMaxAttrs(axis, False, False, dtype, cv.op_label == "ARG_MIN"))


@converter("SOFTMAX")
def softmax(cv, op) -> None:
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    cv.emit(Op.SOFTMAX, [x], out, SoftmaxAttrs(-1, float(op.builtinOptions.beta)))


@converter("QUANTIZE")
def quantize(cv, op) -> None:
    """int -> int requantisation (float -> int at a graph input was folded into the I/O)."""
    x, out = cv.name(op.inputs[0]), cv.name(op.outputs[0])
    xt, ot = cv.tensors[x], cv.tensors[out]
    if xt.quant is None or ot.quant is None or xt.dtype.value == "float32":
        raise UnsupportedOpError(f"{cv.where()}: QUANTIZE of a float tensor inside the graph")
    if len(ot.quant.scale) > 1:
        raise UnsupportedOpError(f"{cv.where()}: per-axis QUANTIZE output")
    cv.emit(Op.QUANTIZE, [x], out, QuantizeAttrs(ot.dtype.value))


@converter("DEQUANTIZE")
def dequantize(cv, op) -> None:
    raise UnsupportedOpError(f"{cv.where()}: DEQUANTIZE of an activation inside the graph "
                             f"(only of constant weights, or at a graph output)")


@converter("GATHER")
def gather(cv, op) -> None:
    """Rows of a constant table (axis 0) by integer ids computed at run time: the NPU's indexed
    GATHER. LiteRT's int8 GATHER copies codes, so the output keeps the table's quantisation."""
    o = op.builtinOptions
    table_i, ids_i = (int(i) for i in op.inputs[:2])
    table, ids, out = cv.name(table_i), cv.name(ids_i), cv.name(op.outputs[0])
    rank = len(cv.tensors[table].shape)
    axis, batch = (int(o.axis), int(o.batchDims)) if o is not None else (0, 0)
    if cv.const(table_i) is None and cv.const(ids_i) is not None and not batch and rank:
        _gather_runs(cv, table, cv.const(ids_i), axis % rank, out)
        return
    if cv.const(table_i) is None or cv.const(ids_i) is not None or axis % max(rank, 1) != 0 or batch:
        raise UnsupportedOpError(f"{cv.where()}: GATHER other than rows (axis 0) of a constant table by "
                                 f"computed ids")
    if cv.tensors[ids].dtype.value not in ("int32", "int64"):
        raise UnsupportedOpError(f"{cv.where()}: GATHER by {cv.tensors[ids].dtype.value} ids")
    q, kind = cv.tensors[table].quant, cv.tensors[table].dtype.value
    if kind != "float32" and (kind != "int8" or q is None or len(q.scale) > 1):
        raise UnsupportedOpError(f"{cv.where()}: GATHER of a {kind} table (an int8 table quantised per "
                                 f"tensor, or a float one)")
    _same_quant(cv, table, out)
    cv.emit(Op.GATHER, [table, ids], out, GatherAttrs(0))


def _gather_runs(cv, x: str, ids: np.ndarray, axis: int, out: str) -> None:
    """GATHER of an activation by constant ids (tf.signal.frame's overlapping frames, a
    channel order): a SLICE per run of consecutive ids, a CONCAT, a free RESHAPE (index_runs)."""
    shape = cv.tensors[x].shape
    runs = index_runs(ids, shape[axis])
    if runs is None:
        raise UnsupportedOpError(f"{cv.where()}: GATHER by constant ids out of range of axis {axis} or in "
                                 f"more than {MAX_RUNS} runs")
    _same_quant(cv, x, out)
    pieces = []
    for k, (lo, hi) in enumerate(runs):
        begin, end = [0] * len(shape), list(shape)
        begin[axis], end[axis] = lo, hi
        piece = cv.fresh(f"{out}/run{k}", (*shape[:axis], hi - lo, *shape[axis + 1:]), out)
        pieces.append(cv.emit(Op.SLICE, [x], piece, SliceAttrs(tuple(begin), tuple(end), (1,) * len(shape)),
                              f"/run{k}"))
    rows = (*shape[:axis], int(ids.size), *shape[axis + 1:])
    joined = pieces[0] if len(pieces) == 1 else cv.emit(Op.CONCAT, pieces, cv.fresh(f"{out}/rows", rows, out),
                                                         ConcatAttrs(axis), "/rows")
    cv.reshape(joined, cv.tensors[out].shape, out, suffix="/gathered")
