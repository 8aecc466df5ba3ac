"""ONNX converters for data movement: Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat,
DepthToSpace, SpaceToDepth, Split, Slice, Pad, Softmax, ReduceMean / Sum / Max / Min, ArgMax, Identity, Dropout, Cast (Resize
lives in onnx_resize)."""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import (ArgMaxAttrs, ConcatAttrs, MeanAttrs, NoAttrs, Op, PadAttrs, ReshapeAttrs, SliceAttrs,
                        SoftmaxAttrs, TransposeAttrs)
from .depth_space import depth_space_plan
from .onnx_builder import Builder, onnx_axis_to_ir, to_ir_order
from .index_runs import MAX_RUNS, index_runs
from .onnx_const import attributes
from .onnx_resize import RESIZE_CONVERTERS


def _axes_input(b: Builder, node, at: dict, index: int) -> list[int] | None:
    if "axes" in at:
        return list(at["axes"])
    v = b.opt_const(node, index)
    return None if v is None else [int(a) for a in v.ravel()]


def flatten(b: Builder, node) -> None:
    a = b.act(node.input[0])
    axis = attributes(node).get("axis", 1) % max(a.rank, 1) if a.rank else 0
    lead = int(np.prod(a.shape[:axis]))
    b.reshape_to_onnx(node.output[0], b.onnx_layout(node.input[0]), (lead, int(np.prod(a.shape)) // lead))


def reshape(b: Builder, node) -> None:
    a = b.act(node.input[0])
    shape = [int(d) for d in b.const(node.input[1], "shape").ravel()]
    if not attributes(node).get("allowzero", 0):
        shape = [a.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        shape[shape.index(-1)] = int(np.prod(a.shape)) // max(known, 1)
    if int(np.prod(shape)) != int(np.prod(a.shape)):
        raise ModelError(f"Reshape node {b.source[-1]!r}: cannot reshape {a.shape} to {tuple(shape)}")
    b.reshape_to_onnx(node.output[0], b.onnx_layout(node.input[0]), tuple(shape))


def squeeze(b: Builder, node) -> None:
    a = b.act(node.input[0])
    given = _axes_input(b, node, attributes(node), 1)
    axes = {ax % a.rank for ax in given} if given is not None else {i for i, d in enumerate(a.shape) if d == 1}
    shape = tuple(d for i, d in enumerate(a.shape) if i not in axes)
    b.reshape_to_onnx(node.output[0], b.onnx_layout(node.input[0]), shape)


def unsqueeze(b: Builder, node) -> None:
    a = b.act(node.input[0])
    axes = _axes_input(b, node, attributes(node), 1)
    if axes is None:
        raise ModelError(f"Unsqueeze node {node.name!r}: no axes (attribute or constant input)")
    rank = a.rank + len(axes)
    shape = list(a.shape)
    for ax in sorted(x % rank for x in axes):
        shape.insert(ax, 1)
    b.reshape_to_onnx(node.output[0], b.onnx_layout(node.input[0]), tuple(shape))


def transpose(b: Builder, node) -> None:
    a = b.act(node.input[0])
    perm = tuple(attributes(node).get("perm", list(range(a.rank))[::-1]))
    b.emit_result(node.output[0], Op.TRANSPOSE, [b.onnx_layout(node.input[0])], TransposeAttrs(perm),
                  nhwc=False)


def depth_to_space(b: Builder, node) -> None:
    """DepthToSpace (modes DCR, CRD) / SpaceToDepth, computed in NHWC."""
    at = attributes(node)
    mode = at.get("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise ModelError(f"{node.op_type} node {b.source[-1]!r}: unknown mode {mode!r}")
    x = b.nhwc(node.input[0])
    steps, shape = depth_space_plan(b.tensors[x].shape, int(at["blocksize"]), node.op_type == "DepthToSpace",
                                    mode == "CRD", what=f"{node.op_type} node {b.source[-1]!r}")
    for k, step in enumerate(steps):
        r = b.emit(Op.RESHAPE, [x], ReshapeAttrs(step.shape), b.fresh(f"{node.output[0]}_block{k}"))
        x = b.emit(Op.TRANSPOSE, [r], TransposeAttrs(step.perm), b.fresh(f"{node.output[0]}_swap{k}"))
    b.emit_result(node.output[0], Op.RESHAPE, [x], ReshapeAttrs(shape), nhwc=True)


def concat(b: Builder, node) -> None:
    """An empty operand (an empty Slice, see slice_) adds nothing and is dropped."""
    names = [n for n in node.input if n and n not in b.empty]
    names = names or [n for n in node.input if n]
    rank = max(np.ndim(v) if isinstance(v, np.ndarray) else v.rank for v in (b.values[n] for n in names))
    axis = onnx_axis_to_ir(attributes(node)["axis"], rank)
    ins = [b.operand(n, rank) for n in names]
    b.emit_result(node.output[0], Op.CONCAT, ins, ConcatAttrs(axis), nhwc=rank == 4)


MAX_TILE_COPIES = 64     # more copies along one axis: the host tiles it


def tile(b: Builder, node) -> None:
    """Tile by constant repeats: a concatenation of copies along each repeated axis."""
    if not b.is_const(node.input[1]) or b.onnx_dtype(node.input[0]).kind != "f":
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: Tile of a non-float value or by repeats known "
                                 "only at run time")
    reps = [int(r) for r in np.ravel(b.const(node.input[1]))]
    rank = b.act(node.input[0]).rank
    if len(reps) != rank or min(reps, default=1) < 1:
        raise ModelError(f"ONNX node {b.source[-1]!r}: Tile repeats {reps} for a rank-{rank} input")
    if max(reps, default=1) > MAX_TILE_COPIES:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: Tile by {max(reps)} copies along one axis")
    axes = [ax for ax, r in enumerate(reps) if r > 1]
    if not axes:
        b.alias(node.output[0], node.input[0])
        return
    cur = node.input[0]
    for k, ax in enumerate(axes):
        out = node.output[0] if k == len(axes) - 1 else f"{node.output[0]}/tile{ax}"
        b.emit_result(out, Op.CONCAT, [b.operand(cur, rank)] * reps[ax], ConcatAttrs(onnx_axis_to_ir(ax, rank)),
                      nhwc=rank == 4)
        cur = out


def _slice_one(b: Builder, onnx_out: str, x: str, rank: int, shape, axis: int, start: int, end: int,
               step: int = 1) -> None:
    """One ONNX-semantics slice along ONNX axis `axis` of value in IR tensor `x`."""
    begin, stop, steps = [0] * rank, list(shape), [1] * rank
    begin[axis], stop[axis], steps[axis] = start, end, step
    attrs = SliceAttrs(to_ir_order(begin, rank), to_ir_order(stop, rank), to_ir_order(steps, rank))
    b.emit_result(onnx_out, Op.SLICE, [x], attrs, nhwc=rank == 4)


def rows_as_slice(indices: np.ndarray, dim: int) -> tuple[int, int, int] | None:
    """(start, stop, step) of a slice picking exactly these constant Gather indices (negative
    ones counted from the end) when they are in range and increase by a constant step, else None."""
    flat = np.asarray(indices, np.int64).ravel()
    flat = np.where(flat < 0, flat + dim, flat)
    if flat.size == 0 or flat.min() < 0 or flat.max() >= dim:
        return None
    step = int(flat[1] - flat[0]) if flat.size > 1 else 1
    if step < 1 or np.any(np.diff(flat) != step):
        return None
    return int(flat[0]), int(flat[-1]) + 1, step


def gather_rows(b: Builder, node, axis: int) -> None:
    """Gather of an activation by constant indices: one SLICE (a DMA) when they form a slice
    (a recurrent state's rows), else a SLICE per run of consecutive indices and a CONCAT
    (index_runs); then a free RESHAPE to the gathered shape."""
    a = b.act(node.input[0])
    axis %= a.rank
    idx = b.const(node.input[1])
    src, out = b.onnx_layout(node.input[0]), node.output[0]
    picked = rows_as_slice(idx, a.shape[axis])
    runs = [(picked[0], picked[1])] if picked is not None else index_runs(idx, a.shape[axis])
    if runs is None:
        raise UnsupportedOpError(f"Gather node {b.source[-1]!r}: indices {idx.ravel().tolist()[:8]} are out of "
                                 f"range of axis {axis} or form more than {MAX_RUNS} runs")
    pieces = []
    for k, (lo, hi) in enumerate(runs):
        begin, stop, steps = [0] * a.rank, list(a.shape), [1] * a.rank
        begin[axis], stop[axis] = lo, hi
        if picked is not None:
            stop[axis], steps[axis] = picked[1], picked[2]
        pieces.append(b.emit(Op.SLICE, [src], SliceAttrs(tuple(begin), tuple(stop), tuple(steps)),
                             b.fresh(f"{out}/rows" if len(runs) == 1 else f"{out}/run{k}")))
    rows = pieces[0] if len(pieces) == 1 else b.emit(Op.CONCAT, pieces, ConcatAttrs(axis), b.fresh(f"{out}/rows"))
    b.reshape_to_onnx(out, rows, a.shape[:axis] + tuple(idx.shape) + a.shape[axis + 1:])


def split(b: Builder, node) -> None:
    at = attributes(node)
    a = b.act(node.input[0])
    axis = at.get("axis", 0) % a.rank
    sizes = at.get("split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        sizes = [int(s) for s in b.const(node.input[1]).ravel()]
    n_out = len(node.output)
    if sizes is None:
        dim = a.shape[axis]
        chunk = -(-dim // n_out)
        sizes = [min(chunk, dim - i * chunk) for i in range(n_out)]
    x = a.ir if a.rank == 4 else b.onnx_layout(node.input[0])
    start = 0
    for out, size in zip(node.output, sizes):
        if out:
            _slice_one(b, out, x, a.rank, a.shape, axis, start, start + int(size))
        start += int(size)


def _onnx_slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """Clamp ONNX start/end to the python-slice equivalent (end -dim-1 means 'before index 0')."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    start = min(max(start, -1), dim - 1)
    end = min(max(end, -1), dim - 1)
    return start, end if end >= 0 else -dim - 1


def _slice_count(dim: int, start: int, end: int, step: int) -> int:
    """Elements a slice keeps, given _onnx_slice_bounds' start and end."""
    if step < 0 and start < 0:
        return 0
    return len(range(dim)[start:None if end == -dim - 1 else end:step])


def slice_(b: Builder, node) -> None:
    a = b.act(node.input[0])
    at = attributes(node)
    if "starts" in at:                                   # opset < 10: attributes
        starts, ends = at["starts"], at["ends"]
        axes, steps = at.get("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts = [int(v) for v in b.const(node.input[1]).ravel()]
        ends = [int(v) for v in b.const(node.input[2]).ravel()]
        axes = _axes_input(b, node, {}, 3) or list(range(len(starts)))
        st = b.opt_const(node, 4)
        steps = [1] * len(starts) if st is None else [int(v) for v in st.ravel()]
    begin, stop, step = [0] * a.rank, list(a.shape), [1] * a.rank
    for ax, s0, e0, sp in zip(axes, starts, ends, steps):
        ax %= a.rank
        if sp == 0:
            raise ModelError(f"Slice node {b.source[-1]!r} has step 0")
        begin[ax], stop[ax] = _onnx_slice_bounds(a.shape[ax], int(s0), int(e0), int(sp))
        step[ax] = int(sp)
    sizes = [_slice_count(d, lo, hi, sp) for d, lo, hi, sp in zip(a.shape, begin, stop, step)]
    if 0 in sizes:      # an empty piece (cat([x, y[:, :0]])): a constant only Concat may read
        b.values[node.output[0]] = np.zeros(sizes, np.float32)
        b.empty.add(node.output[0])
        return
    x = a.ir if a.rank == 4 else b.onnx_layout(node.input[0])
    attrs = SliceAttrs(to_ir_order(begin, a.rank), to_ir_order(stop, a.rank), to_ir_order(step, a.rank))
    b.emit_result(node.output[0], Op.SLICE, [x], attrs, nhwc=a.rank == 4)


def pad(b: Builder, node) -> None:
    at = attributes(node)
    a = b.act(node.input[0])
    mode = at.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise UnsupportedOpError(f"unsupported ONNX operator 'Pad' with mode '{mode}' (node '{b.source[-1]}')")
    if "pads" in at:
        pads, value = list(at["pads"]), float(at.get("value", 0.0))
        axes = list(range(a.rank))
    else:
        pads = [int(p) for p in b.const(node.input[1]).ravel()]
        v = b.opt_const(node, 2)
        value = 0.0 if v is None else float(np.asarray(v).ravel()[0])
        axes = _axes_input(b, node, {}, 3) or list(range(a.rank))
    per_axis = [(0, 0)] * a.rank
    n = len(axes)
    for i, ax in enumerate(axes):
        per_axis[ax % a.rank] = (int(pads[i]), int(pads[i + n]))
    if any(p < 0 for pair in per_axis for p in pair):
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: negative Pad amounts are not supported")
    if mode == "reflect" and any(p >= d for (p0, p1), d in zip(per_axis, a.shape) for p in (p0, p1)):
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: reflect padding must be shorter than the axis")
    x = a.ir if a.rank == 4 else b.onnx_layout(node.input[0])
    if mode == "edge":
        _edge_pad(b, node.output[0], x, a.rank, per_axis)
        return
    b.emit_result(node.output[0], Op.PAD, [x], PadAttrs(to_ir_order(per_axis, a.rank), value, mode),
                  nhwc=a.rank == 4)


def _edge_pad(b: Builder, out: str, x: str, rank: int, per_axis: list[tuple[int, int]]) -> None:
    """Edge (replicate) padding: along each padded axis, copies of the first and last slices
    concatenated before and after the value."""
    if max(p for pair in per_axis for p in pair) > MAX_TILE_COPIES:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: edge padding by more than {MAX_TILE_COPIES}")
    todo = [(ax, pair) for ax, pair in enumerate(per_axis) if pair != (0, 0)]
    if not todo:
        b.emit_result(out, Op.RESHAPE, [x], ReshapeAttrs(b.tensors[x].shape), nhwc=rank == 4)
        return
    for k, (ax, (before, after)) in enumerate(todo):
        axis, shape = onnx_axis_to_ir(ax, rank), b.tensors[x].shape

        def edge(i: int, src: str = x, axis: int = axis, shape: tuple[int, ...] = shape) -> str:
            begin, end = [0] * len(shape), list(shape)
            begin[axis], end[axis] = i, i + 1
            return b.emit(Op.SLICE, [src], SliceAttrs(tuple(begin), tuple(end), (1,) * len(shape)),
                          b.fresh(f"{out}_edge{ax}_{i}"))
        parts = ([edge(0)] * before if before else []) + [x] + ([edge(shape[axis] - 1)] * after if after else [])
        if k == len(todo) - 1:
            b.emit_result(out, Op.CONCAT, parts, ConcatAttrs(axis), nhwc=rank == 4)
        else:
            x = b.emit(Op.CONCAT, parts, ConcatAttrs(axis), b.fresh(f"{out}_edge{ax}"))


def softmax(b: Builder, node) -> None:
    a = b.act(node.input[0])
    default = -1 if b.opset >= 13 else 1
    axis = attributes(node).get("axis", default) % a.rank
    if b.opset >= 13 or axis == a.rank - 1:
        x = a.ir if a.rank == 4 else b.onnx_layout(node.input[0])
        ir_axis = onnx_axis_to_ir(axis, a.rank)
        if ir_axis == a.rank - 1:
            b.emit_result(node.output[0], Op.SOFTMAX, [x], SoftmaxAttrs(ir_axis), nhwc=a.rank == 4)
            return
        # another axis (channels of a [N, C, L] map): moved last, the softmax, moved back
        perm = tuple(i for i in range(a.rank) if i != ir_axis) + (ir_axis,)
        last = b.emit(Op.TRANSPOSE, [x], TransposeAttrs(perm), b.fresh(node.output[0] + "_axis_last"))
        y = b.emit(Op.SOFTMAX, [last], SoftmaxAttrs(a.rank - 1), b.fresh(node.output[0] + "_softmax"))
        b.emit_result(node.output[0], Op.TRANSPOSE, [y], TransposeAttrs(tuple(int(i) for i in np.argsort(perm))),
                      nhwc=a.rank == 4)
        return
    # opset < 13: softmax over all axes from `axis` on, as a 2-D [outer, inner] problem
    lead = int(np.prod(a.shape[:axis]))
    flat = b.emit(Op.RESHAPE, [b.onnx_layout(node.input[0])],
                  ReshapeAttrs((lead, int(np.prod(a.shape)) // lead)), b.fresh(node.output[0] + "_2d"))
    y = b.emit(Op.SOFTMAX, [flat], SoftmaxAttrs(1), b.fresh(node.output[0] + "_2d_softmax"))
    b.reshape_to_onnx(node.output[0], y, a.shape)


def _reduce(op: Op):
    """ReduceMean / ReduceSum / ReduceMax / ReduceMin over any axes (4-D: in NHWC)."""
    def convert(b: Builder, node) -> None:
        _reduce_node(b, node, op)
    return convert


def _reduce_node(b: Builder, node, op: Op) -> None:
    at = attributes(node)
    a = b.act(node.input[0])
    axes = _axes_input(b, node, at, 1)
    if axes is None:
        if at.get("noop_with_empty_axes", 0):
            b.alias(node.output[0], node.input[0])
            return
        axes = list(range(a.rank))
    axes = sorted({ax % a.rank for ax in axes})
    keep = bool(at.get("keepdims", 1))
    if a.rank != 4:
        b.emit_result(node.output[0], op, [b.onnx_layout(node.input[0])], MeanAttrs(tuple(axes), keep),
                      nhwc=False)
        return
    ir_axes = tuple(sorted(onnx_axis_to_ir(ax, 4) for ax in axes))
    if keep:
        b.emit_result(node.output[0], op, [a.ir], MeanAttrs(ir_axes, True), nhwc=True)
        return
    m = b.emit(op, [a.ir], MeanAttrs(ir_axes, True), b.fresh(node.output[0] + "_keep"))
    nchw = b.emit(Op.TRANSPOSE, [m], TransposeAttrs((0, 3, 1, 2)), b.fresh(node.output[0] + "_keep_nchw"))
    b.reshape_to_onnx(node.output[0], nchw, tuple(d for i, d in enumerate(a.shape) if i not in axes))


def arg_max(b: Builder, node) -> None:
    """ArgMax / ArgMin in ONNX layout; the int64 index tensor is not quantised."""
    at = attributes(node)
    a = b.act(node.input[0])
    attrs = ArgMaxAttrs(int(at.get("axis", 0)) % a.rank, bool(at.get("keepdims", 1)),
                        bool(at.get("select_last_index", 0)), "int64", node.op_type == "ArgMin")
    b.emit_result(node.output[0], Op.ARG_MAX, [b.onnx_layout(node.input[0])], attrs, nhwc=False)


def identity(b: Builder, node) -> None:
    b.alias(node.output[0], node.input[0])


def cast(b: Builder, node) -> None:
    to = attributes(node).get("to")
    if to == onnx.TensorProto.BOOL and b.onnx_dtype(node.input[0]) == np.bool_:
        b.alias(node.output[0], node.input[0])
        return
    if to != onnx.TensorProto.FLOAT:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: Cast of an activation to "
                                 f"{onnx.TensorProto.DataType.Name(to)} is not supported")
    if b.onnx_dtype(node.input[0]) == np.bool_:      # a mask made a float (a masked mean's weights)
        out, rank = node.output[0], b.act(node.input[0]).rank
        b.values[out + "/true"], b.values[out + "/false"] = np.ones((), np.float32), np.zeros((), np.float32)
        b.emit_result(out, Op.WHERE, [b.operand(n, rank) for n in (node.input[0], out + "/true", out + "/false")],
                      NoAttrs(), nhwc=rank == 4)
        return
    b.alias(node.output[0], node.input[0])


TENSOR_CONVERTERS = {
    "Flatten": flatten, "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Transpose": transpose, "Concat": concat, "DepthToSpace": depth_to_space,
    "SpaceToDepth": depth_to_space, "Split": split, "Slice": slice_, "Pad": pad,
    "Softmax": softmax, "ReduceMean": _reduce(Op.MEAN), "ReduceSum": _reduce(Op.REDUCE_SUM),
    "ReduceMax": _reduce(Op.REDUCE_MAX), "ReduceMin": _reduce(Op.REDUCE_MIN), "ArgMax": arg_max, "ArgMin": arg_max,
    "Identity": identity, "Dropout": identity, "Tile": tile,
    "Cast": cast, **RESIZE_CONVERTERS,
}
