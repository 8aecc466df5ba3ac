"""Codegen driver: a quantised graph, an arch and a schedule in, a Program out.

The schedule (npukit.schedule) holds every choice: partition, fusion groups, the arena and
each layer's tiling. Lowering emits each layer in order from it, with no search, then
packages regions and the I/O table.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..arch import Arch
from ..errors import ScheduleError, UnsupportedOpError
from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..isa.program import IoTensor, Layer, Program, Region
from ..isa.serial import to_data
from ..schedule.fused import FusedTiling
from ..schedule.plan import Schedule, tiling_dict
from .bands import fused_summary
from .context import CompileOptions, Ctx
from .fused import lower_fused
from .layer import lower_layer
from .memory import ConstImage
from .reuse import Reuse
from .partition import layer_macs, min_bytes, vpu_ops
from .schedule_check import check_schedule
from .scheduler import prepare, schedule_prepared


def lower_program(g: Graph, arch: Arch, options: CompileOptions, meta: dict, schedule: Schedule | None = None,
                  keep: list | None = None, reuse: Reuse | None = None) -> Program:
    """The program of the quantised graph `g` on `arch`, emitted in one pass from `schedule`
    (None: the one `schedule_graph` makes; a given one is checked against the graph and the
    arch first). `keep`: a list that receives the schedule used. `reuse`: weight streams and
    ratios shared with other compiles (the same bytes either way)."""
    user_inputs, user_outputs = g.inputs, g.outputs
    g, moved = prepare(g)
    sched = schedule if schedule is not None else schedule_prepared(g, arch, options, reuse)
    groups, arena = check_schedule(sched, g, arch, options)
    if keep is not None:
        keep.append(sched)
    names = [r.name for r in arch.regions]
    w_space = I.REGION0 + names.index(arch.placement.weights)
    consts = ConstImage(w_space, arena.size if w_space == arena.space else 0, sched.compress_weights, reuse=reuse)
    ctx = Ctx(arch, options, arena, consts, sched.arena.onchip_bytes)
    ctx.emitter.packed, ctx.emitter.packed_space = consts.packed, consts.space
    ctx.emitter.readonly[w_space] = (consts.base, 1 << 62)
    buffered = {n: replace(options, double_buffer=n == 2) for n in (1, 2)}
    by_name = {nd.name: nd for nd in g.nodes}
    reasons = {p.node: p.reason for p in sched.placements}
    firsts = {(ex.name if ex else d): d for d, (_, ex) in groups.items()}
    into = {n: first for first, d in firsts.items() for n in (d, groups[d][0].name) if n != first}
    interior = {by_name[d].outputs[0] for d in groups} | {ex.outputs[0] for _, ex in groups.values() if ex}
    layers: list[Layer] = []
    host_segments: list[dict] = []
    host_blobs: list[np.ndarray] = []
    counted: set[str] = set()
    for i, (node, ls) in enumerate(zip(g.nodes, sched.layers)):
        ctx.emitter.layer, ctx.flip, ctx.options = i, ls.slots_from_top, buffered[ls.buffers]
        reason, detail, tiling = reasons[node.name], {}, tiling_dict(ls.tiling)
        if node.name in into:
            detail, tiling = {"tiling": f"fused into {into[node.name]}"}, {"fused_into": into[node.name]}
        elif node.name in firsts:
            dw = by_name[firsts[node.name]]
            pw, ex = groups[dw.name]
            assert isinstance(ls.tiling, FusedTiling)
            lower_fused(ctx, g, dw, pw, ls.tiling, (i, i + 1, i + 2) if ex else (i, i + 1), ex)
            ctx.emitter.layer = i
            what = f"{dw.name}, {pw.name}" if ex else pw.name
            detail = {"tiling": f"fused with {what}: {fused_summary(ls.tiling, ex is not None)}"}
        elif reason:
            _emit_host(ctx, g, node, host_segments, host_blobs)
        else:
            try:
                detail = lower_layer(ctx, g, node, ls.tiling) or {}
            except UnsupportedOpError as e:
                raise e.at(node.source) from None
        taps = math.prod(g.tensors[node.inputs[1]].shape[1:3]) \
            if node.op is Op.CONV2D and node.attrs.depthwise else 0
        layers.append(Layer(node.name, node.op.value, node.source or (node.name,), "host" if reason else "npu",
                            layer_macs(g, node), *min_bytes(g, node, arch, counted, interior), vpu_ops(g, node),
                            reason, {k: str(v) for k, v in detail.items()}, tiling, taps))
    layers = _credit_compression(layers, ctx.emitter.program, arch.placement.weights)
    regions = _regions(arch, names, arena, consts, g.variables)
    return Program(arch.to_toml(), ctx.emitter.program, regions, _io(g, arena, user_inputs, meta, moved),
                   _io(g, arena, user_outputs, meta, moved), host_segments, host_blobs, layers, meta)


def _credit_compression(layers: list[Layer], program: list[I.Instr], w_region: str) -> list[Layer]:
    """The off-chip lower bound counts a compressed block's stream, not its decoded bytes."""
    saved: dict[int, int] = {}
    seen = set()
    for ins in program:
        if isinstance(ins, I.Dma) and ins.codec and ins.src not in seen:
            seen.add(ins.src)
            saved[ins.layer] = saved.get(ins.layer, 0) + math.prod(ins.shape) * ins.elem - ins.packed
    out = []
    for i, la in enumerate(layers):
        cut = min(saved.get(i, 0), la.min_region_bytes.get(w_region, 0))
        if cut:
            la = replace(la, min_bytes=la.min_bytes - cut,
                         min_region_bytes=la.min_region_bytes | {w_region: la.min_region_bytes[w_region] - cut})
        out.append(la)
    return out


def _emit_host(ctx: Ctx, g: Graph, node: Node, segments: list, blobs: list) -> None:
    from ..quant.records import encode_node     # (the records of every operator: only with a host segment)
    def ref(name):
        t = g.tensors[name]
        q = t.quant
        rec = {"shape": list(t.shape), "dtype": t.dtype.value,
               "quant": to_data(q, blobs) if q is not None else None}
        if t.is_const:
            rec["data"] = to_data(t.data, blobs)
        else:
            rec["space"], rec["addr"] = ctx.space(name), ctx.addr(name)
        return rec

    segments.append({**encode_node(node, blobs),
                     "inputs": [ref(n) for n in node.inputs], "outputs": [ref(n) for n in node.outputs]})
    seg = len(segments) - 1
    reads = [(ctx.space(n), ctx.addr(n), ctx.addr(n) + g.tensors[n].nbytes)
             for n in node.inputs if not g.tensors[n].is_const]
    writes = [(ctx.space(n), ctx.addr(n), ctx.addr(n) + g.tensors[n].nbytes) for n in node.outputs]
    ctx.emitter.emit(lambda L, d: I.Host(L, d, seg), reads, writes)


def _regions(arch: Arch, names, arena, consts, variables=None) -> list[Region]:
    out = []
    for i, name in enumerate(names):
        space = I.REGION0 + i
        size = arena.size if space == arena.space else 0
        if space == consts.space:
            size = max(size, consts.end)
        if size == 0:
            continue
        image = bytearray(size)
        if space == consts.space:
            image[consts.base:consts.end] = consts.data
        if space == arena.space:     # initial values of persistent variables
            for var, init in (variables or {}).items():
                raw = np.ascontiguousarray(init).tobytes()
                addr = arena.where[var].addr
                image[addr:addr + len(raw)] = raw
        limit = arch.region(name).size_mib * (1 << 20)
        if size > limit:
            raise ScheduleError(f"region {name!r} needs {size} bytes but has {int(limit)}")
        out.append(Region(name, space, bytes(image)))
    return out


def _io(g: Graph, arena, names, meta, moved) -> list[IoTensor]:
    out = []
    for name in names:
        inner, perm = moved.get(name, (name, ()))
        t = g.tensors[inner]
        q = t.quant
        shape = tuple(t.shape)
        if perm:   # the user's layout: invert the permutation for inputs, apply it for outputs
            shape = (tuple(shape[perm.index(i)] for i in range(len(perm))) if inner in g.inputs
                     else tuple(shape[p] for p in perm))
        where = arena.where[inner]
        out.append(IoTensor(name, t.dtype.value, shape, where.space, where.addr,
                            float(q.s) if q else 1.0, int(q.zp) if q else 0,
                            bool(meta.get("float_io", {}).get(name, False)) and (q is not None or t.dtype is DType.F32),
                            tuple(perm), g.declared_int.get(name, "")))
        # (an unquantised integer output, ARG_MAX's indices, stays integer)
    return out


