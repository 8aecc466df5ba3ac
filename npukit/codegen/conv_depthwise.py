"""Lowering of a depthwise CONV2D to tiles: rows x channel blocks, each DWCONV writing its
requantised output directly (conv.py lowers the other convolutions)."""
from __future__ import annotations

from ..errors import ScheduleError
from ..isa import instructions as I
from ..schedule.tiling import ConvShape, ConvTiling, rows_in
from .context import SlotPair
from .emitter import dma


def emit_depthwise(ctx, node, s: ConvShape, t: ConvTiling, attrs, w, params, b, x_shape, o_shape, mode):
    """Depthwise tiles: rows x channel blocks; each DwConv writes requantised int8 (16x8: int16,
    mode 2) directly."""
    if tuple(attrs.input_dilation) != (1, 1):       # (DwConv has no input dilation: a grouped conv has)
        raise ScheduleError(f"{node.name}: a depthwise conv with input dilation {attrs.input_dilation}")
    e, p = ctx.emitter, node.params
    x_space, o_space = ctx.space(node.inputs[0]), ctx.space(node.outputs[0])
    _, h, wd, c_all = x_shape
    k_all, mult = o_shape[-1], s.depthwise_mult
    a_slots, w_slots, _ = ctx.slots()
    nb = ctx.nbuf
    xb, ob, pbytes = s.in_bytes, s.out_bytes, 3 * params.itemsize
    ins = SlotPair(a_slots.take(rows_in(s, t.th) * wd * t.tc * xb, nb))
    outs = SlotPair(a_slots.take(t.th * s.ew * t.tk * ob, nb))
    wts = SlotPair(w_slots.take(t.tk * s.kh * s.kw, nb))
    prm = SlotPair(w_slots.take(pbytes * t.tk, nb))
    x_base = ctx.addr(node.inputs[0]) + b * h * wd * c_all * xb
    o_base = ctx.addr(node.outputs[0]) + b * s.eh * s.ew * k_all * ob
    pt, pl = attrs.pads[0], attrs.pads[1]
    wspace = ctx.consts.space
    eng = int(I.Engine.MXU if t.engine == "mxu" else I.Engine.VPU)
    for c0 in range(0, s.c, t.tc):
        cl = min(t.tc, s.c - c0)
        k0, kl = c0 * mult, cl * mult
        w_addr, p_addr = ctx.const(w[:, :, :, k0:k0 + kl], True), ctx.const(params[:, k0:k0 + kl], True)
        for r0 in range(0, s.eh, t.th):
            rl = min(t.th, s.eh - r0)
            y0 = r0 * s.sh - pt
            a = max(y0, 0)
            last = max(a, min((r0 + rl - 1) * s.sh - pt + s.dh * (s.kh - 1), h - 1))
            a = min(a, last)       # a window wholly in the padding still reads one real row
            n_rows = last - a + 1
            xa, _ = ins.lookup(("x", r0, c0))
            dma(e, x_space, x_base + (a * wd * c_all + c0) * xb, (0, 0, 0, c_all * xb), I.ABUF, xa,
                (0, 0, 0, cl * xb), (1, 1, 1, n_rows * wd), cl * xb)
            wa, load = wts.lookup(("w", c0))
            if load:
                dma(e, wspace, w_addr, (0,) * 4, I.WBUF, wa, (0,) * 4, (1,) * 4, kl * s.kh * s.kw)
            pa, load = prm.lookup(("p", c0))
            if load:
                dma(e, wspace, p_addr, (0,) * 4, I.WBUF, pa, (0,) * 4, (1,) * 4, pbytes * kl)
            oa = outs.next()
            npix = rl * s.ew
            e.emit(lambda L, d: I.DwConv(
                L, d, src=xa, in_h=n_rows, in_w=wd, c=cl, wgt=wa, params=pa, dst=oa, out_h=rl, out_w=s.ew,
                mult=mult, kernel=(s.kh, s.kw), stride=attrs.stride, dilation=attrs.dilation, pad_t=a - y0,
                pad_l=pl, zp=p.input_zp, out_zp=p.output_zp, act_min=p.act_min, act_max=p.act_max, engine=eng,
                in_bytes=xb, out_bytes=ob, mode=mode))
            dma(e, I.ABUF, oa, (0, 0, 0, kl * ob), o_space, o_base + (r0 * s.ew * k_all + k0) * ob,
                (0, 0, 0, k_all * ob), (1, 1, 1, npix), kl * ob)
