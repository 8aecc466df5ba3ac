"""Lowering of MATMUL (activation x activation, as in attention) and GELU to the NPU.

MATMUL A[batch, M, K] x B -> [batch, M, N]: tiles of M rows x N columns x K chunks. The
B tile is loaded into WBUF as the stationary operand in [n, k] order: a contiguous copy
when B is given transposed ([N, K], the K of attention scores), a byte-strided DMA
otherwise. MATMUL instructions accumulate (A - a_zp)(B - b_zp) into ACC over the K
chunks; REQUANT (Q31 mode, zero bias) writes int8, as LiteRT's BATCH_MATMUL does.
GELU is a 256-entry table on the VPU (the LUT path), of an int16 input LUT16 (codegen/vector16.py).
"""
from __future__ import annotations

import numpy as np

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node, Op
from ..schedule.plan import MatmulTiling
from ..isa import instructions as I
from ..kernels.kernels_vpu16 import Lut16Params
from .context import Ctx, SlotPair
from .emitter import dma

TRANSFORMER_NPU_OPS = {Op.MATMUL, Op.GELU}


def _dims(g: Graph, node: Node):
    a, b = g.tensors[node.inputs[0]].shape, g.tensors[node.inputs[1]].shape
    tb = node.attrs.transpose_b
    n = b[-2] if tb else b[-1]
    batch_a, batch_b = int(np.prod(a[:-2])), int(np.prod(b[:-2]))
    return batch_a, batch_b, a[-2], a[-1], n, tb


def matmul_support(g: Graph, node: Node) -> str:
    """'' if the NPU runs `node` (MATMUL / GELU), else why not."""
    if isinstance(node.params, Lut16Params):     # GELU of an int16 input: LUT16
        return ""
    if any(g.tensors[t].dtype is not DType.I8 for t in (*node.inputs, *node.outputs)):
        return "only int8 operands on the NPU"
    if node.op is Op.GELU:
        return ""
    a, b = g.tensors[node.inputs[0]].shape, g.tensors[node.inputs[1]].shape
    if a[:-2] != b[:-2] and int(np.prod(b[:-2])) != 1:
        return "matmul with broadcast batch dims"
    return ""


def matmul_macs(g: Graph, node: Node) -> int:
    if node.op is not Op.MATMUL:
        return 0
    batch, _, m, k, n, _ = _dims(g, node)
    return batch * m * k * n


def matmul_tiling(ctx: Ctx, g: Graph, node: Node) -> MatmulTiling:
    """The largest tiles whose (double-buffered) copies fit ABUF, WBUF and ACC."""
    _, _, m, k, n, _ = _dims(g, node)
    a = ctx.arch
    nb = ctx.nbuf
    abuf = a.abuf_bytes - ctx.onchip_bytes - 256
    mt, kt, nt = m, k, n

    def fits():
        return (nb * (mt * kt + mt * nt) + 64 <= abuf and nb * (nt * kt + I.PARAM_BYTES * nt) + 64 <= a.wbuf_bytes
                and nb * 4 * mt * nt + 64 <= a.acc_bytes)
    while not fits():
        if kt >= max(mt, nt) and kt > 16:
            kt = -(-kt // 2)
        elif nt >= mt and nt > 1:
            nt = -(-nt // 2)
        elif mt > 1:
            mt = -(-mt // 2)
        else:
            kt = -(-kt // 2)
    return MatmulTiling(mt, kt, nt)


def lower_matmul(ctx: Ctx, g: Graph, node: Node, t: MatmulTiling) -> None:
    """Emit the layer with the schedule's tiling `t`."""
    e, p = ctx.emitter, node.params
    batch, batch_b, m, k, n, tb = _dims(g, node)
    mt, kt, nt = t.mt, t.kt, t.nt
    if not (1 <= mt <= m and 1 <= kt <= k and 1 <= nt <= n):
        raise ScheduleError(f"{node.name}: matmul tiling {mt} x {kt} x {nt} does not fit a {m} x {k} x {n} product")
    a_slots, w_slots, acc_slots = ctx.slots()
    nb = ctx.nbuf
    ins, outs = SlotPair(a_slots.take(mt * kt, nb)), SlotPair(a_slots.take(mt * nt, nb))
    wts, prm = SlotPair(w_slots.take(nt * kt, nb)), SlotPair(w_slots.take(I.PARAM_BYTES * nt, nb))
    accs = SlotPair(acc_slots.take(4 * mt * nt, nb))
    params = np.stack([np.zeros(n, np.int32), np.full(n, p.multiplier, np.int32), np.full(n, p.shift, np.int32)])
    x_space, w_space, o_space = (ctx.space(t) for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    x0, w0, o0 = (ctx.addr(t) for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    p_addr = {n0: ctx.const(params[:, n0:n0 + min(nt, n - n0)], True) for n0 in range(0, n, nt)}
    for bi in range(batch):
        bb = bi if batch_b == batch else 0
        for n0 in range(0, n, nt):
            nl = min(nt, n - n0)
            for m0 in range(0, m, mt):
                ml = min(mt, m - m0)
                acc = accs.next()
                for j, k0 in enumerate(range(0, k, kt)):
                    kl = min(kt, k - k0)
                    xa, load = ins.lookup(("x", bi, m0, k0))
                    if load:
                        dma(e, x_space, x0 + bi * m * k + m0 * k + k0, (0, 0, k, 1), I.ABUF, xa, (0, 0, kl, 1),
                            (1, 1, ml, kl), 1)
                    wa, load = wts.lookup(("w", bb, n0, k0))
                    if load:
                        base = w0 + bb * n * k
                        if tb:   # B is [N, K]: rows of it are the stationary rows
                            src, strides = base + n0 * k + k0, (0, 0, k, 1)
                        else:    # B is [K, N]: a byte-strided transpose on the way in
                            src, strides = base + k0 * n + n0, (0, 0, 1, n)
                        dma(e, w_space, src, strides, I.WBUF, wa, (0, 0, kl, 1), (1, 1, nl, kl), 1)
                    e.emit(lambda L, d, xa=xa, wa=wa, kl=kl, j=j: I.MatMul(
                        L, d, src=xa, m=ml, k_len=kl, wgt=wa, n=nl, dst=acc, a_zp=p.a_zp, b_zp=p.b_zp,
                        accumulate=int(j > 0)))
                pa, load = prm.lookup(("p", n0))
                if load:
                    dma(e, ctx.consts.space, p_addr[n0], (0,) * 4, I.WBUF, pa, (0,) * 4, (1, 1, 1, 1), I.PARAM_BYTES * nl)
                oa = outs.next()
                e.emit(lambda L, d: I.Requant(
                    L, d, src=acc, n_pix=ml, k=nl, params=pa, dst=oa, dst_pix_stride=nl, dst_c_off=0,
                    out_zp=p.output_zp, act_min=p.act_min, act_max=p.act_max, mode=0))
                dma(e, I.ABUF, oa, (0, 0, nl, 1), o_space, o0 + bi * m * n + m0 * n + n0, (0, 0, n, 1),
                    (1, 1, ml, nl), 1)
