"""The VPU's int16 layers (TFLite's 16x8 scheme): which int16 element-wise, table, softmax,
pooling, reduction and resize layers the NPU runs, LOGISTIC / TANH on SIGMOID16 and GELU of
an int16 input on LUT16. The others (ELEMENTWISE, POOL, MEAN, RESIZE, SOFTMAX) lower in
codegen/vector.py with 2-byte elements (an int8 operand of an int16 ADD / SUB / MUL widened
there per tile)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..isa.immediates import params_to_ints
from ..kernels import kernels_vpu16 as k16
from .context import Ctx, SlotPair
from .emitter import contiguous
from .vector import eltwise_plan

VPU16_OPS = {Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.PRELU, Op.SIGMOID, Op.TANH, Op.SOFTMAX, Op.MAX_POOL,
             Op.AVG_POOL, Op.MEAN, Op.REDUCE_MAX, Op.REDUCE_MIN, Op.RESIZE}


def vpu16_support(g: Graph, node: Node) -> str:
    """'' if the VPU's int16 forms run `node` (every activation int16, 16x8 params), else why not."""
    acts = [g.tensors[t] for t in (*node.inputs, *node.outputs) if not g.tensors[t].is_const]
    mixed = node.op in (Op.ADD, Op.SUB, Op.MUL) and g.tensors[node.outputs[0]].dtype is DType.I16 and \
        all(t.dtype in (DType.I8, DType.I16) for t in acts)      # int8 operands widen to x - zp
    if not mixed and any(t.dtype is not DType.I16 for t in acts):
        return f"int16 {node.op.value} with an operand of another type (the VPU's int16 forms are int16 throughout)"
    if node.op in (Op.SIGMOID, Op.TANH):
        return "" if isinstance(node.params, k16.Sigmoid16Params) else f"int16 {node.op.value} without 16x8 params"
    if node.op is Op.SOFTMAX:
        return "" if isinstance(node.params, k16.Softmax16Params) else "int16 softmax without 16x8 params"
    if node.op in (Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.PRELU):
        if node.op in (Op.MAXIMUM, Op.MINIMUM, Op.PRELU) and \
                any(g.tensors[t].is_const and g.tensors[t].dtype is not DType.I16 for t in node.inputs):
            return f"int16 {node.op.value} with a constant operand that is not int16"
        return "" if eltwise_plan(g, node) else "int16 element-wise broadcast other than rows / columns"
    return ""


def lower_sigmoid16(ctx: Ctx, g: Graph, node: Node) -> dict:
    """LOGISTIC / TANH of int16 elements, in chunks of the flat tensor."""
    e, n = ctx.emitter, g.tensors[node.outputs[0]].size
    a_slots, _, _ = ctx.slots()
    chunk = min(n, (a_slots.size // (4 * ctx.nbuf)) // 16 * 16 or n)
    ins, outs = SlotPair(a_slots.take(2 * chunk, ctx.nbuf)), SlotPair(a_slots.take(2 * chunk, ctx.nbuf))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    q = params_to_ints(node.params)
    for i in range(0, n, chunk):
        ln = min(chunk, n - i)
        xa, oa = ins.next(), outs.next()
        contiguous(e, ctx.space(node.inputs[0]), src + 2 * i, I.ABUF, xa, 2 * ln)
        e.emit(lambda L, d: I.Sigmoid16(L, d, xa, ln, oa, q))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), dst + 2 * i, 2 * ln)
    return {}


def lower_lut16(ctx: Ctx, g: Graph, node: Node) -> dict:
    """A function of int16 elements by its interpolated 513-entry table (GELU), in chunks of the
    flat tensor; int16 or int8 out."""
    p: k16.Lut16Params = node.params
    e, n, ob = ctx.emitter, g.tensors[node.outputs[0]].size, p.out_bytes
    a_slots, w_slots, _ = ctx.slots()
    chunk = min(n, (a_slots.size // ((2 + ob) * ctx.nbuf) - 16) // 16 * 16 or n)
    ins, outs = SlotPair(a_slots.take(2 * chunk, ctx.nbuf)), SlotPair(a_slots.take(ob * chunk, ctx.nbuf))
    table_at = w_slots.take(I.LUT16_BYTES, 1)[0]
    table = np.asarray(p.table, np.int16).view(np.int8)
    contiguous(e, ctx.consts.space, ctx.const(table, True), I.WBUF, table_at, I.LUT16_BYTES)
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    for i in range(0, n, chunk):
        ln = min(chunk, n - i)
        xa, oa = ins.next(), outs.next()
        contiguous(e, ctx.space(node.inputs[0]), src + 2 * i, I.ABUF, xa, 2 * ln)
        e.emit(lambda L, d: I.Lut16(L, d, xa, ln, table_at, oa, ob, p.out_zp))
        contiguous(e, I.ABUF, oa, ctx.space(node.outputs[0]), dst + ob * i, ob * ln)
    return {}
