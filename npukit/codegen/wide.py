"""Lowering of the 16-bit paths: which int16 layers the NPU runs, and MAGNITUDE on the VPU."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..isa.immediates import params_to_ints
from ..kernels.kernels_vpu import pad_code
from ..kernels.kernels_relu16 import Relu16Params
from ..kernels.kernels_vpu16 import Lut16Params
from .context import Ctx, SlotPair
from .emitter import contiguous, dma
from .vector16 import VPU16_OPS, vpu16_support
from .widen import unit_weight

INT16_MOVES = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD, Op.CONCAT}


def int16_support(g: Graph, node: Node) -> str:
    """'' if the NPU runs this layer that touches an int16 tensor, else why not."""
    t = {n: g.tensors[n] for n in (*node.inputs, *node.outputs)}
    if node.op in INT16_MOVES:
        acts = [x for x in t.values() if not x.is_const]
        if len({x.dtype for x in acts}) != 1:
            return "data movement between int8 and int16"
        if node.op is Op.PAD and node.attrs.mode == "constant" and \
                pad_code(node.attrs.value, t[node.inputs[0]].qp.s, t[node.inputs[0]].qp.zp) not in (0, -1):
            return "int16 PAD whose fill code is not a repeated byte (the DMA fill sets bytes)"
        return ""
    if node.op is Op.MAGNITUDE:
        ok = t[node.inputs[0]].dtype is DType.I16 and t[node.outputs[0]].dtype in (DType.I8, DType.I16)
        return "" if ok else "magnitude needs an int16 input and an int8 or int16 output"
    if node.op in (Op.CONV2D, Op.FULLY_CONNECTED):
        x, out = t[node.inputs[0]], t[node.outputs[0]]
        dw = node.op is Op.CONV2D and node.attrs.depthwise
        if x.dtype is not DType.I16 or out.dtype is not DType.I16 or x.quant is None or x.quant.zp != 0 or \
                node.op is Op.CONV2D and node.attrs.groups != 1 and not dw:
            return "int16 layer other than 16x8 (int16 in and out, zero point 0; dense or depthwise)"
        return ""
    if node.op is Op.QUANTIZE:
        ok = {t[node.inputs[0]].dtype, t[node.outputs[0]].dtype} <= {DType.I8, DType.I16} and node.params is not None
        return "" if ok else "int16 QUANTIZE other than between int8 and int16"
    if node.op in (Op.HARD_SWISH, Op.UNARY):
        return "" if isinstance(node.params, Lut16Params) else f"int16 {node.op.value} without its int16 table"
    if node.op is Op.CLAMP:
        return "" if isinstance(node.params, Relu16Params) else "int16 clamp without its 16x8 params"
    if node.op in VPU16_OPS:
        return vpu16_support(g, node)
    return "int16 tensor (the NPU's int16 paths: 16x8 conv, depthwise and fully connected, requantisation, " \
           "magnitude, data movement, hard-swish, EXP / LOG tables, ReLU forms, the VPU's 16x8 ops)"


def magnitude_geometry(g: Graph, node: Node) -> tuple[int, int, int]:
    shape = g.tensors[node.inputs[0]].shape
    ax = node.attrs.axis % len(shape)
    return math.prod(shape[:ax]), shape[ax] // 2, math.prod(shape[ax + 1:])


def lower_magnitude(ctx: Ctx, g: Graph, node: Node) -> dict:
    """Tiles of [outer block, 2, channel block, inner] int16 -> [outer block, channel block, inner]
    int8 or int16."""
    e = ctx.emitter
    outer, c, inner = magnitude_geometry(g, node)
    ob_bytes = g.tensors[node.outputs[0]].dtype.np.itemsize
    a_slots, _, _ = ctx.slots()
    budget = a_slots.size // ctx.nbuf - 32
    unit = (4 + ob_bytes) * inner       # bytes per (outer, channel): 2 x int16 in, 1 x int8 / int16 out
    if unit > budget:
        raise ScheduleError(f"{node.name}: a magnitude row of {inner} elements does not fit ABUF ({a_slots.size} B)")
    cb = min(c, budget // unit)
    ob = max(1, min(outer, budget // (unit * c))) if cb == c else 1
    ins, outs = SlotPair(a_slots.take(ob * 4 * cb * inner, ctx.nbuf)), SlotPair(a_slots.take(ob * cb * inner * ob_bytes, ctx.nbuf))
    x_space, o_space = ctx.space(node.inputs[0]), ctx.space(node.outputs[0])
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    q = params_to_ints(node.params)
    for o0 in range(0, outer, ob):
        on = min(ob, outer - o0)
        for c0 in range(0, c, cb):
            cn = min(cb, c - c0)
            xa, oa = ins.next(), outs.next()
            dma(e, x_space, src + 2 * (o0 * 2 * c * inner + c0 * inner), (0, 4 * c * inner, 2 * c * inner, 2),
                I.ABUF, xa, (0, 4 * cn * inner, 2 * cn * inner, 2), (1, on, 2, cn * inner), 2)
            e.emit(lambda L, d: I.Magnitude(L, d, xa, on, cn, inner, oa, q))
            b = ob_bytes
            dma(e, I.ABUF, oa, (0, 0, b * cn * inner, b), o_space, dst + b * (o0 * c * inner + c0 * inner),
                (0, 0, b * c * inner, b), (1, 1, on, cn * inner), b)
    return {"tiling": f"outer {ob} x channels {cb} of {outer} x {c} (x {inner})"}


def lower_requantize(ctx: Ctx, g: Graph, node: Node) -> dict:
    """QUANTIZE with an int16 side as 1x1 DwConv tiles of weight 1 over the flattened tensor
    (one channel): MultiplyByQuantizedMultiplier(x - zp) + zp, LiteRT's Requantize; an int16
    CLAMP (16x8 RELU / RELU6) is the same with its quantised bounds as the activation range."""
    e = ctx.emitter
    xt, ot = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    xb, ob, n = xt.dtype.np.itemsize, ot.dtype.np.itemsize, ot.size
    a_slots, w_slots, _ = ctx.slots()
    chunk = min(n, max(16, a_slots.size // ((xb + ob) * ctx.nbuf) // 16 * 16))
    ins, outs = SlotPair(a_slots.take(chunk * xb, ctx.nbuf)), SlotPair(a_slots.take(chunk * ob, ctx.nbuf))
    p = node.params
    at = unit_weight(ctx, w_slots, p.multiplier, p.shift)
    info = np.iinfo(ot.dtype.np)
    lo, hi = (p.act_min, p.act_max) if isinstance(p, Relu16Params) else (int(info.min), int(info.max))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    for i in range(0, n, chunk):
        ln = min(chunk, n - i)
        xa, oa = ins.next(), outs.next()
        contiguous(e, ctx.space(node.inputs[0]), src + i * xb, I.ABUF, xa, ln * xb)
        e.emit(lambda L, d: I.DwConv(
            L, d, src=xa, in_h=1, in_w=ln, c=1, wgt=at, params=at + 4, dst=oa, out_h=1, out_w=ln, mult=1,
            kernel=(1, 1), stride=(1, 1), dilation=(1, 1), pad_t=0, pad_l=0, zp=p.input_zp, out_zp=p.output_zp,
            act_min=lo, act_max=hi, engine=int(I.Engine.VPU), in_bytes=xb, out_bytes=ob))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), dst + i * ob, ln * ob)
    return {"tiling": f"{chunk} elements of {n}"}
