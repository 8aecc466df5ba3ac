"""Codegen driver: a quantised graph and an arch in, a Program out.

Reads like the pipeline: partition (NPU or host, with a reason), plan off-chip memory,
lower each layer in order to tiled instructions, then package regions and the I/O table.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import ScheduleError, UnsupportedOpError
from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..isa.program import IoTensor, Layer, Program, Region
from ..isa.serial import to_data
from ..quant import kernels_vpu as kv
from ..quant.quantize import LUT_OPS
from ..sim.timing import MAGNITUDE_OPS_PER_ELEMENT, SOFTMAX_OPS_PER_ELEMENT
from ..ir.shapes import REDUCTIONS
from .boundary import absorb_boundary_transposes
from .context import CompileOptions, Ctx
from .conv import conv_macs, lower_conv
from .data import DATA_LOWERING
from .gather import gather_reduced_axes_graph
from .fused import fusable_expansions, fusable_pairs, lower_fused, plan_fused
from .matmul import TRANSFORMER_NPU_OPS, lower_transformer, matmul_macs, matmul_support
from .memory import ConstImage, plan_arena
from .replay import layer_costs, pick
from .wide import int16_support, lower_magnitude
from .vector import (
    ELTWISE_KIND,
    eltwise_plan,
    lower_eltwise,
    lower_lut,
    lower_mean,
    mean_layout,
    lower_pool,
    reduction_fits,
    lower_resize,
    broadcast_supported,
    lower_eltwise_broadcast,
    lower_select,
    lower_softmax,
    resize_fits,
)


def npu_support(g: Graph, node: Node, work_abuf: int = 1 << 62) -> str:
    """'' if the NPU runs `node`, else the reason it runs on the host (`work_abuf`: the
    ABUF bytes left for working tiles)."""
    op = node.op
    if op is Op.HOST_TFLITE:        # no NPU lowering by construction: the frontend's reason
        return node.attrs.reason
    if op is Op.HOST_FLOAT:
        return node.attrs.reason or f"no NPU kernel for ONNX {node.attrs.op_type}"
    rank = len(g.tensors[node.outputs[0]].shape)
    if op not in TRANSFORMER_NPU_OPS and any(g.tensors[t].dtype is DType.I16 and not g.tensors[t].is_const
                                              for t in (*node.inputs, *node.outputs)):
        reason = int16_support(g, node)
        if reason or op not in DATA_LOWERING:
            return reason
    if op in TRANSFORMER_NPU_OPS:
        return matmul_support(g, node)
    if op in (Op.CONV2D, Op.FULLY_CONNECTED, Op.MAX_POOL, Op.AVG_POOL, Op.RESHAPE) or op in LUT_OPS:
        return ""
    if op is Op.MAGNITUDE:       # reached only without int16 tensors (those are handled above)
        return "magnitude needs an int16 input"
    if op in ELTWISE_KIND:
        ok = eltwise_plan(g, node) or broadcast_supported(g, node)
        return "" if ok else "broadcast pattern not supported by the VPU"
    if op is Op.WHERE:
        return "" if broadcast_supported(g, node) else f"{rank}-D tensor exceeds the 4-D DMA"
    if op is Op.SOFTMAX:
        axis = node.attrs.axis % rank
        return "" if axis == rank - 1 else "softmax over an axis other than the last"
    if op is Op.RESIZE:
        return "" if rank == 4 and resize_fits(g, node, work_abuf) else "resize plane larger than ABUF"
    if op is Op.QUANTIZE:
        ok = node.params is not None and g.tensors[node.inputs[0]].dtype is DType.I8
        return "" if ok else "quantize from a type other than int8"
    if op in REDUCTIONS:
        if not mean_layout(g, node):
            return "reduction over non-adjacent axes"
        return "" if reduction_fits(g, node, work_abuf) else "reduced elements larger than ABUF"
    if op in DATA_LOWERING:
        return "" if rank <= 4 else f"{rank}-D tensor exceeds the 4-D DMA"
    return f"no NPU lowering for {op.value}"


def onchip_bytes(arch, options: CompileOptions | None = None) -> int:
    """The top of ABUF kept for resident activations (CompileOptions.onchip_fraction)."""
    return int(arch.abuf_bytes * (options or CompileOptions()).onchip_fraction) // 16 * 16


def lower_program(g: Graph, arch, options: CompileOptions, meta: dict) -> Program:
    user_inputs, user_outputs = g.inputs, g.outputs
    g, moved = absorb_boundary_transposes(gather_reduced_axes_graph(g))
    names = [r.name for r in arch.regions]
    act_space = I.REGION0 + names.index(arch.placement.activations)
    w_space = I.REGION0 + names.index(arch.placement.weights)
    onchip = onchip_bytes(arch, options)
    reasons = {node.name: npu_support(g, node, arch.abuf_bytes - onchip) for node in g.nodes}
    host = {n for node in g.nodes if reasons[node.name] for n in (*node.inputs, *node.outputs)}
    pairs = fusable_pairs(g, lambda nd: not reasons[nd.name]) if options.fuse_depthwise != "never" else {}
    spaces = (act_space, w_space, onchip)
    io = (user_inputs, user_outputs, moved)
    lower = lambda fused, expansions=None: _lower_graph(  # noqa: E731
        g, arch, options, meta, reasons, host, spaces, io, fused, expansions)
    expansions = fusable_expansions(g, lambda nd: not reasons[nd.name], pairs) \
        if options.fuse_expansion != "never" else {}
    if expansions and options.fuse_expansion == "always":
        return lower(pairs, expansions)
    timed: dict[int, tuple] = {}     # id(program) -> layer_costs: each program timed once

    def costs(p: Program) -> tuple:
        if id(p) not in timed:
            timed[id(p)] = layer_costs(p, arch)
        return timed[id(p)]
    progs = [lower(pairs)]
    if pairs and options.fuse_depthwise == "auto":   # fusion stays if the event model prefers it,
        progs.insert(0, lower({}))                     # as for tilings; the expansions too
    if expansions:
        progs += _with_expansions(g, options, lower, costs, pairs, expansions, progs[-1])
    prog = progs[0]
    if len(progs) > 1:
        prog = progs[pick([costs(p)[0] for p in progs], options.energy_tie)]
    return prog


def _with_expansions(g: Graph, options: CompileOptions, lower, costs, pairs, expansions,
                     pair_prog) -> list[Program]:
    """The program with every expansion fused and, when the event model prefers the pair-only
    program's layers for some blocks (expansion, depthwise, 1x1) and the fused ones for
    others, also the program fusing only the latter (block by block by `pick`)."""
    every = lower(pairs, expansions)
    index = {nd.name: i for i, nd in enumerate(g.nodes)}
    (_, alone), (_, fused) = costs(pair_prog), costs(every)
    keep = {}
    for d, ex in expansions.items():
        i = index[ex.name]
        if "fused with" not in every.layers[i].detail.get("tiling", ""):
            continue                    # did not fit
        block = [tuple(map(sum, zip(*costs[i:i + 3]))) for costs in (alone, fused)]
        if pick(block, options.energy_tie) == 1:
            keep[d] = ex
    return [every] + ([lower(pairs, keep)] if keep and len(keep) < len(expansions) else [])


def compress_weights(arch, options: CompileOptions) -> bool:
    """Whether weight blocks are stored compressed: `auto` does where the decoder keeps up with
    the weights' region (then a compressed load is never slower, only shorter)."""
    if options.compress_weights == "never":
        return False
    return arch.dma.decode_bytes_per_cycle >= arch.region_bytes_per_cycle(arch.placement.weights)


def _lower_graph(g: Graph, arch, options: CompileOptions, meta: dict, reasons, host, spaces, io,
                 pairs: dict[str, Node], expansions: dict[str, Node] | None = None) -> Program:
    """Plan memory and lower every layer, `pairs` (depthwise name -> 1x1 node) fused, and
    `expansions` (depthwise name -> the 1x1 before it) fused into their pairs."""
    expansions = dict(expansions or {})
    act_space, w_space, onchip = spaces
    user_inputs, user_outputs, moved = io
    names = [r.name for r in arch.regions]
    by_name = {nd.name: nd for nd in g.nodes}
    index = {nd.name: i for i, nd in enumerate(g.nodes)}
    while True:   # a pair whose fused tiles do not fit runs unfused: its middle tensor needs a place
        arena = plan_arena(g, act_space, arch.abuf_bytes - onchip, onchip, pinned=host,
                           fused={index[d] for d in pairs} | {index[d] - 1 for d in expansions})
        consts = ConstImage(w_space, arena.size if w_space == act_space else 0, compress_weights(arch, options))
        ctx = Ctx(arch, options, arena, consts, onchip)
        ctx.emitter.packed, ctx.emitter.packed_space = consts.packed, consts.space
        fused = {d: plan_fused(ctx, g, by_name[d], pw, expansions.get(d)) for d, pw in pairs.items()}
        if all(fused.values()):
            break
        # an expansion that does not fit leaves its pair to be tried on its own
        failed = {d for d in pairs if not fused[d]}
        pairs = {d: pw for d, pw in pairs.items() if d not in failed or d in expansions}
        expansions = {d: ex for d, ex in expansions.items() if d not in failed}
    ctx.emitter.readonly[w_space] = (consts.base, 1 << 62)
    layers, host_segments, host_blobs, counted = [], [], [], set()
    pw_detail: dict[str, dict] = {}
    # fused pairs (and fused expansions): never materialised
    interior = {by_name[d].outputs[0] for d in pairs} | {ex.outputs[0] for ex in expansions.values()}
    firsts = {ex.name: d for d, ex in expansions.items()}
    for i, node in enumerate(g.nodes):
        ctx.emitter.layer = i
        emitted = len(ctx.emitter.program)
        reason = reasons[node.name]
        detail = {}
        if node.name in pw_detail:       # lowered with the depthwise conv before it
            detail = pw_detail[node.name]
        elif node.name in firsts:        # expansion, depthwise and 1x1 run band by band
            dw = by_name[firsts[node.name]]
            pw = pairs[dw.name]
            detail = lower_fused(ctx, g, dw, pw, fused[dw.name], (i, i + 1, i + 2), node)
            pw_detail[dw.name] = {"tiling": f"fused into {node.name}",
                                  "depthwise_taps": math.prod(g.tensors[dw.inputs[1]].shape[1:3])}
            pw_detail[pw.name] = {"tiling": f"fused into {node.name}"}
            ctx.emitter.layer = i
        elif node.name in pairs:
            pw = pairs[node.name]
            detail = lower_fused(ctx, g, node, pw, fused[node.name], (i, i + 1))
            pw_detail[pw.name] = {"tiling": f"fused into {node.name}"}
            ctx.emitter.layer = i
        elif not reason:
            try:
                detail = _lower(ctx, g, node) or {}
            except UnsupportedOpError as e:
                raise e.at(node.source) from None
        else:
            _emit_host(ctx, g, node, host_segments, host_blobs)
        if len(ctx.emitter.program) > emitted:   # the next lowered layer takes its slots from the other end
            ctx.flip = not ctx.flip
        layers.append(Layer(node.name, node.op.value, node.source or (node.name,), "host" if reason else "npu",
                            _macs(g, node), *_min_bytes(g, node, arch, counted, interior), _vpu_ops(g, node), reason,
                            {k: str(v) for k, v in detail.items()}))
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


def _lower(ctx: Ctx, g: Graph, node: Node):
    op = node.op
    if op in (Op.CONV2D, Op.FULLY_CONNECTED):
        return lower_conv(ctx, g, node)
    if op in ELTWISE_KIND:
        plan = eltwise_plan(g, node)
        return lower_eltwise(ctx, g, node, plan) if plan else lower_eltwise_broadcast(ctx, g, node)
    if op in LUT_OPS:
        return lower_lut(ctx, g, node)
    if op is Op.QUANTIZE:      # an int8 -> int8 / uint8 rescale is a table of the 256 codes
        out = np.dtype(g.tensors[node.outputs[0]].dtype.np)
        return lower_lut(ctx, g, node, kv.requantize(np.arange(-128, 128, dtype=np.int8), node.params, out))
    if op is Op.SOFTMAX:
        return lower_softmax(ctx, g, node)
    if op is Op.WHERE:
        return lower_select(ctx, g, node)
    if op is Op.RESIZE:
        return lower_resize(ctx, g, node)
    if op in (Op.MAX_POOL, Op.AVG_POOL):
        return lower_pool(ctx, g, node)
    if op in REDUCTIONS:
        return lower_mean(ctx, g, node)
    if op is Op.RESHAPE:
        return {}
    if op is Op.MAGNITUDE:
        return lower_magnitude(ctx, g, node)
    if op in TRANSFORMER_NPU_OPS:
        return lower_transformer(ctx, g, node)
    if not DATA_LOWERING[op](ctx, g, node):
        raise ScheduleError(f"{node.name}: {op.value} needs more than 4 strided dims")
    return {}


def _emit_host(ctx: Ctx, g: Graph, node: Node, segments: list, blobs: list) -> None:
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

    segments.append({"node": to_data(node.with_(source=()), blobs),
                     "inputs": [ref(n) for n in node.inputs], "outputs": [ref(n) for n in node.outputs]})
    seg = len(segments) - 1
    reads = [(ctx.space(n), ctx.addr(n), ctx.addr(n) + g.tensors[n].nbytes)
             for n in node.inputs if not g.tensors[n].is_const]
    writes = [(ctx.space(n), ctx.addr(n), ctx.addr(n) + g.tensors[n].nbytes) for n in node.outputs]
    ctx.emitter.emit(lambda L, d: I.Host(L, d, seg), reads, writes)


def _macs(g: Graph, node: Node) -> int:
    return conv_macs(g, node) if node.op in (Op.CONV2D, Op.FULLY_CONNECTED) else matmul_macs(g, node)


def _vpu_ops(g: Graph, node: Node) -> int:
    """Element operations the layer needs on the vector unit (the roofline's VPU term)."""
    out = g.tensors[node.outputs[0]].size
    if node.op in (Op.MAX_POOL, Op.AVG_POOL):
        return out * node.attrs.kernel[0] * node.attrs.kernel[1]
    if node.op in REDUCTIONS:
        return g.tensors[node.inputs[0]].size
    if node.op in (Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.CONCAT, Op.PAD):
        return 0                                   # pure data movement (DMA)
    if node.op is Op.SOFTMAX:
        return SOFTMAX_OPS_PER_ELEMENT * out
    if node.op is Op.MAGNITUDE:
        return MAGNITUDE_OPS_PER_ELEMENT * out
    if node.op is Op.RESIZE and node.attrs.mode == "bilinear":
        return 4 * out
    return out                                     # requantise / element-wise / table


def _min_bytes(g: Graph, node: Node, arch, counted: set[str], interior: set[str] = frozenset()
               ) -> tuple[int, dict[str, int]]:
    """What must cross off-chip whatever the schedule, in total and per region: weights, the
    graph inputs and outputs the layer touches, and the spills the SRAM size forces
    (activations larger than all of ABUF are written out by their producer and read back by
    each consumer, unless they are the inside of a fused pair, which is never stored)."""
    if node.op is Op.RESHAPE:
        return 0, {}                               # an alias: nothing moves
    consts = [n for n in node.inputs if g.tensors[n].is_const and n not in counted]
    counted.update(consts)               # a weight shared by several layers crosses once
    weights = sum(g.tensors[n].nbytes for n in consts)
    acts = sum(g.tensors[n].nbytes for n in node.inputs if n in g.inputs)
    acts += sum(g.tensors[n].nbytes for n in node.outputs if n in g.outputs)
    acts += sum(g.tensors[n].nbytes for n in (*node.inputs, *node.outputs)
                if not g.tensors[n].is_const and n not in g.inputs and n not in g.outputs
                and n not in interior and g.tensors[n].nbytes > arch.abuf_bytes)
    per_region: dict[str, int] = {}
    for region, n in ((arch.placement.weights, weights), (arch.placement.activations, acts)):
        if n:
            per_region[region] = per_region.get(region, 0) + int(n)
    return int(weights + acts), per_region


def _regions(arch, names, arena, consts, variables=None) -> list[Region]:
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


