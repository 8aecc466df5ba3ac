"""Emission of a fused group (depthwise + 1x1, optionally the expansion 1x1 before them) band
by band: the instructions codegen.fused lowers with the tiling it picked.

Per row band: each channel chunk's input rows reach ABUF (loaded, copied on chip from the
previous band, or computed by the expansion), a DwConv writes the chunk into the band
buffer, then the 1x1 reduces over the chunks into ACC, is requantised and stored.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..isa import instructions as I
from ..schedule.fused import FusedTiling
from ..schedule.tiling import ConvShape, rows_in
from ..cost import costs
from .context import Ctx, OwnSlots, SlotPair
from .conv import requant_params
from .emitter import contiguous, dma


def params(g: Graph, node: Node, k: int) -> np.ndarray:
    bias = g.tensors[node.inputs[2]].const_data if len(node.inputs) > 2 else np.zeros(k, np.int64)
    return requant_params(bias, node.params, k, 0)


def _const_dma(ctx: Ctx, src: int, dst: int, nbytes: int) -> None:
    dma(ctx.emitter, ctx.consts.space, src, (0,) * 4, I.WBUF, dst, (0,) * 4, (1,) * 4, nbytes)


class FusedBands:
    """The buffers and constants of one fused group on one tiling; `emit()` writes its
    instructions."""

    def __init__(self, ctx: Ctx, g: Graph, dw: Node, pw: Node, t: FusedTiling, layers: tuple[int, ...],
                 ex: Node | None = None):
        self.ctx, self.g, self.dw, self.pw, self.t, self.ex = ctx, g, dw, pw, t, ex
        self.e = e = ctx.emitter
        n, h, wd, c = g.tensors[dw.inputs[0]].shape
        _, eh, ew, k = g.tensors[pw.outputs[0]].shape
        self.n, self.h, self.wd, self.c, self.eh, self.ew, self.k = n, h, wd, c, eh, ew, k
        a = dw.attrs
        self.kh, self.kw = kh, kw = g.tensors[dw.inputs[1]].shape[1:3]
        self.s = s = ConvShape(h, wd, c, eh, ew, c, kh, kw, a.stride[0], a.dilation[0], 1, 1)
        self.x_space, self.o_space = ctx.space((ex or dw).inputs[0]), ctx.space(pw.outputs[0])
        self.x_direct = self.x_space == I.ABUF and t.tc == c and not ex
        self.o_direct = self.o_space == I.ABUF
        self.l_dw, self.l_pw = layers[-2:]
        a_slots, w_slots, acc_slots = ctx.slots()
        nb = self.nb = ctx.nbuf
        self.chunks = [(c0, min(t.tc, c - c0)) for c0 in range(0, c, t.tc)]
        self.kblocks = [(k0, min(t.tk, k - k0)) for k0 in range(0, k, t.tk)]
        self.ins = None if self.x_direct else SlotPair(a_slots.take(rows_in(s, t.th) * wd * t.tc, nb))
        self.band = [a_slots.take(t.th * ew * t.tc, len(self.chunks)) for _ in range(nb)]
        self.outs = None if self.o_direct else SlotPair(a_slots.take(t.th * ew * t.tk, nb))
        self.accs = SlotPair(acc_slots.take(4 * t.th * ew * t.tk, nb))
        self.expand = _expansion(ctx, g, ex, t, self.chunks, (a_slots, w_slots, acc_slots),
                                 rows_in(s, t.th) * wd, layers[0]) if ex else None
        self._constants(w_slots)
        # one channel chunk and two input slots: a band's input rows that the previous band
        # also read are copied from its slot over the on-chip path instead of loaded again
        self.halo = not self.x_direct and len(self.chunks) == 1 and nb >= 2
        self.prev = (0, 0, -1)     # the last loaded band: slot, first and last input row
        e.layer = self.l_pw

    def _constants(self, w_slots) -> None:
        """Depthwise weights and params and the 1x1 params: loaded once, each block its own
        slot; the 1x1 weights: resident slots or a ping-pong pair."""
        ctx, g, dw, pw, t, e = self.ctx, self.g, self.dw, self.pw, self.t, self.e
        w_dw, p_dw = g.tensors[dw.inputs[1]].const_data, params(g, dw, self.c)
        w_pw, p_pw = g.tensors[pw.inputs[1]].const_data, params(g, pw, self.k)
        e.layer = self.l_dw
        self.dw_w, self.dw_p = [], []
        for c0, cl in self.chunks:
            wa, pa = w_slots.take(self.kh * self.kw * t.tc, 1)[0], w_slots.take(I.PARAM_BYTES * t.tc, 1)[0]
            _const_dma(ctx, ctx.const(w_dw[:, :, :, c0:c0 + cl], True), wa, self.kh * self.kw * cl)
            _const_dma(ctx, ctx.const(p_dw[:, c0:c0 + cl], True), pa, I.PARAM_BYTES * cl)
            self.dw_w.append(wa)
            self.dw_p.append(pa)
        e.layer = self.l_pw
        self.pw_p = []
        for k0, kl in self.kblocks:
            pa = w_slots.take(I.PARAM_BYTES * t.tk, 1)[0]
            _const_dma(ctx, ctx.const(p_pw[:, k0:k0 + kl], True), pa, I.PARAM_BYTES * kl)
            self.pw_p.append(pa)
        self.w_addr = {(ki, ci): ctx.const(w_pw[k0:k0 + kl, :, :, c0:c0 + cl], True)
                       for ki, (k0, kl) in enumerate(self.kblocks) for ci, (c0, cl) in enumerate(self.chunks)}
        self.slots = {key: w_slots.take(t.tk * t.tc, 1)[0] for key in self.w_addr} if t.weights_resident else None
        self.wts = None if t.weights_resident else SlotPair(w_slots.take(t.tk * t.tc, self.nb))
        self.loaded: set = set()

    def windows(self) -> list[tuple]:
        """(batch, band, first output row, rows, first input row, last input row, window top)."""
        s, t, pt = self.s, self.t, self.dw.attrs.pads[0]
        out = []
        for b in range(self.n):
            for ri, r0 in enumerate(range(0, self.eh, t.th)):
                rl = min(t.th, self.eh - r0)
                y0 = r0 * s.sh - pt
                first = max(y0, 0)
                last = max(first, min((r0 + rl - 1) * s.sh - pt + s.dh * (self.kh - 1), self.h - 1))
                out.append((b, ri, r0, rl, min(first, last), last, y0))  # an all-padding window reads one row
        return out

    def load(self, band, cis) -> dict[int, int]:
        """Bring chunks `cis` of a band's input into ABUF; chunk -> address."""
        e, wd, c = self.e, self.wd, self.c
        b, ri, _, _, first, last, _ = band
        x_base = 0 if self.ex else self.ctx.addr(self.dw.inputs[0]) + b * self.h * wd * c
        if self.ins is None:        # x_direct
            return {0: x_base + first * wd * c}
        out = {}
        e.layer = self.l_dw
        for ci in cis:
            c0, cl = self.chunks[ci]
            xa, _ = self.ins.lookup(("x", b, ri, ci))
            start = first
            prev = self.prev
            if self.halo and ri > 0 and prev[2] >= first:   # rows the last band loaded: copy on chip
                start = prev[2] + 1
                contiguous(e, I.ABUF, prev[0] + (first - prev[1]) * wd * c, I.ABUF, xa, (start - first) * wd * c)
            if start <= last and self.expand:
                self.expand(b, ri, ci, start, last, xa + (start - first) * wd * cl)
                e.layer = self.l_dw
            elif start <= last:
                dma(e, self.x_space, x_base + start * wd * c + c0, (0, 0, 0, c), I.ABUF,
                    xa + (start - first) * wd * cl, (0, 0, 0, cl), (1, 1, 1, (last - start + 1) * wd), cl)
            self.prev = (xa, first, last)
            out[ci] = xa
        return out

    def depthwise(self, band, ci: int, xa: int, ma: int) -> None:
        t, a, pd, wd = self.t, self.dw.attrs, self.dw.params, self.wd
        _, _, _, rl, first, last, y0 = band
        n_rows, cl, ew = last - first + 1, self.chunks[ci][1], self.ew
        eng = int(I.Engine.MXU if t.engine == "mxu" else I.Engine.VPU)
        w, p = self.dw_w[ci], self.dw_p[ci]
        self.e.emit(lambda L, d: I.DwConv(
            L, d, src=xa, in_h=n_rows, in_w=wd, c=cl, wgt=w, params=p, dst=ma, out_h=rl,
            out_w=ew, mult=1, kernel=(self.kh, self.kw), stride=a.stride, dilation=a.dilation, pad_t=first - y0,
            pad_l=a.pads[1], zp=pd.input_zp, out_zp=pd.output_zp, act_min=pd.act_min, act_max=pd.act_max,
            engine=eng))

    def project(self, band, mids) -> None:
        """The 1x1 over the band's chunks, per output block: Convs into ACC, Requant, store."""
        e, t, pp, ew, k = self.e, self.t, self.pw.params, self.ew, self.k
        b, _, r0, rl, _, _, _ = band
        npix = rl * ew
        o_base = self.ctx.addr(self.pw.outputs[0]) + b * self.eh * ew * k
        e.layer = self.l_pw
        for ki, (k0, kl) in enumerate(self.kblocks):
            acc = self.accs.next()
            for ci, (c0, cl) in enumerate(self.chunks):
                if self.wts is None:        # weights_resident: a slot each
                    assert self.slots is not None
                    wa, fetch = self.slots[ki, ci], (ki, ci) not in self.loaded
                    self.loaded.add((ki, ci))
                else:
                    wa, fetch = self.wts.lookup(("w", ki, ci))
                if fetch:
                    _const_dma(self.ctx, self.w_addr[ki, ci], wa, kl * cl)
                ma = mids[ci]
                e.emit(lambda L, d, ma=ma, cl=cl, wa=wa, ci=ci: I.Conv(
                    L, d, src=ma, in_h=rl, in_w=ew, c_stride=cl, c_off=0, c_len=cl, wgt=wa, dst=acc, out_h=rl,
                    out_w=ew, k=kl, kernel=(1, 1), stride=(1, 1), dilation=(1, 1), in_dil=(1, 1), pad_t=0,
                    pad_l=0, zp=pp.input_zp, accumulate=int(ci > 0), dataflow=t.dataflow))
            if self.outs is None:       # o_direct
                oa, o_stride, o_off = o_base + r0 * ew * k, k, k0
            else:
                oa, o_stride, o_off = self.outs.next(), kl, 0
            pa = self.pw_p[ki]
            e.emit(lambda L, d: I.Requant(
                L, d, src=acc, n_pix=npix, k=kl, params=pa, dst=oa, dst_pix_stride=o_stride, dst_c_off=o_off,
                out_zp=pp.output_zp, act_min=pp.act_min, act_max=pp.act_max, mode=0))
            if not self.o_direct:
                dma(e, I.ABUF, oa, (0, 0, 0, kl), self.o_space, o_base + r0 * ew * k + k0, (0, 0, 0, k),
                    (1, 1, 1, npix), kl)

    def emit(self) -> None:
        chunks, nb, bands = self.chunks, self.nb, self.windows()
        # a band's loads are issued ahead of the previous band's 1x1 and stores when every chunk
        # has its own slot; otherwise each chunk is loaded just before its DwConv. With an
        # expansion and more chunks than slots, the next chunk's rows are computed before this
        # chunk's DwConv (the MXU need not wait on the Requant between them)
        ahead = range(len(chunks)) if len(chunks) <= nb else range(0)
        pipe = self.ex is not None and len(chunks) > nb >= 2
        if pipe:
            ahead = range(1)
        staged = self.load(bands[0], ahead)
        for j, band in enumerate(bands):
            xas, mids = staged, self.band[j % nb]
            self.e.layer = self.l_dw
            for ci in range(len(chunks)):
                xa = xas[ci] if ci in xas else self.load(band, [ci])[ci]
                if pipe and ci + 1 < len(chunks):
                    xas = xas | self.load(band, [ci + 1])
                self.depthwise(band, ci, xa, mids[ci])
            if j + 1 < len(bands):   # the next band's loads go ahead of this band's stores on the port
                staged = self.load(bands[j + 1], ahead)
            self.project(band, mids)

def _expansion(ctx: Ctx, g: Graph, ex: Node, t: FusedTiling, chunks, slots, max_pix: int, layer: int):
    """Set up the expansion's buffers; returns fill(batch, band, chunk, first row, last row,
    dst), which computes those rows of the expanded tensor's channel chunk into ABUF at dst
    (a [rows, width, chunk] block), `t.eg` pixels at a time (a 1x1 convolution reads the
    rows as one run of pixels): a Conv of their input pixels into ACC and a Requant into
    their part of dst."""
    e, nb = ctx.emitter, ctx.nbuf
    a_slots, w_slots, acc_slots = slots
    _, h, wd, cin = g.tensors[ex.inputs[0]].shape
    space = ctx.space(ex.inputs[0])
    direct = space == I.ABUF
    xs = None if direct else SlotPair(a_slots.take(max_pix * cin, nb))
    accs = SlotPair(acc_slots.take(4 * t.eg * t.tc, nb))
    w, p = g.tensors[ex.inputs[1]].const_data, params(g, ex, g.tensors[ex.outputs[0]].shape[-1])
    e.layer = layer
    pas = []
    for c0, cl in chunks:
        pa = w_slots.take(I.PARAM_BYTES * t.tc, 1)[0]
        _const_dma(ctx, ctx.const(p[:, c0:c0 + cl], True), pa, I.PARAM_BYTES * cl)
        pas.append(pa)
    w_addr = [ctx.const(w[c0:c0 + cl], True) for c0, cl in chunks]
    wts = OwnSlots(w_slots, t.tc * cin) if t.ex_resident else SlotPair(w_slots.take(t.tc * cin, nb))
    pe = ex.params

    def fill(b: int, ri: int, ci: int, first: int, last: int, dst: int) -> None:
        e.layer = layer
        n_pix, cl = (last - first + 1) * wd, chunks[ci][1]
        src = ctx.addr(ex.inputs[0]) + (b * h + first) * wd * cin
        if xs is not None:      # not direct
            xa, fetch = xs.lookup(("x", b, ri))
            if fetch:
                contiguous(e, space, src, I.ABUF, xa, n_pix * cin)
            src = xa
        wa, fetch = wts.lookup(("w", ci))
        if fetch:
            _const_dma(ctx, w_addr[ci], wa, cl * cin)
        for p0 in range(0, n_pix, t.eg):
            group(src + p0 * cin, dst + p0 * cl, min(t.eg, n_pix - p0), cl, wa, pas[ci])

    def group(src: int, dst: int, n_pix: int, cl: int, wa: int, pa: int) -> None:
        acc = accs.next()
        e.emit(lambda L, d: I.Conv(
            L, d, src=src, in_h=1, in_w=n_pix, c_stride=cin, c_off=0, c_len=cin, wgt=wa, dst=acc,
            out_h=1, out_w=n_pix, k=cl, kernel=(1, 1), stride=(1, 1), dilation=(1, 1), in_dil=(1, 1),
            pad_t=0, pad_l=0, zp=pe.input_zp, accumulate=0, dataflow=t.dataflow))
        e.emit(lambda L, d: I.Requant(
            L, d, src=acc, n_pix=n_pix, k=cl, params=pa, dst=dst, dst_pix_stride=cl, dst_c_off=0,
            out_zp=pe.output_zp, act_min=pe.act_min, act_max=pe.act_max, mode=0))
    return fill


def fused_summary(t: FusedTiling, expansion: bool) -> str:
    """The tiling of a fused group in words (the profile's per-layer note)."""
    how = (f"rows {t.th} x ch {t.tc} x out-ch {t.tk}, {'ws' if t.dataflow == costs.WS else 'os'}, "
           f"depthwise on {t.engine}{', weights resident' if t.weights_resident else ''}")
    return f"{how}, expansion {t.eg} px a group" if expansion else how
