"""A depthwise convolution fused with the 1x1 convolution that is its only consumer.

Per row band: each channel chunk of the depthwise output is written by a DwConv into a
band buffer in ABUF (chunk-major, so a chunk is a contiguous [pixels, tc] block), then the
1x1 reduces over the chunks into ACC, is requantised and stored. The intermediate tensor
never goes off chip and gets no arena space. An expansion 1x1 convolution before the
depthwise (its output read by the depthwise alone) can join: per band and chunk, a Conv of
the expansion's input rows into ACC and a Requant write the depthwise's input rows straight
into its ABUF slot, so the expanded tensor never goes off chip either. Instructions carry
the layer they belong to, so the profile still reports each layer separately.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..schedule.fused import FusedShape, FusedTiling, search_fused
from ..schedule.tiling import Bandwidth, ConvShape, rows_in
from ..sim import costs
from .context import Ctx, OwnSlots, SlotPair
from .conv import requant_params
from .emitter import contiguous, dma
from .replay import fastest


def fusable_pairs(g: Graph, on_npu) -> dict[str, Node]:
    """Depthwise node name -> the 1x1 convolution right after it that alone reads its output."""
    pairs: dict[str, Node] = {}
    for dw, pw in zip(g.nodes, g.nodes[1:]):
        if dw.op is not Op.CONV2D or pw.op is not Op.CONV2D or not (on_npu(dw) and on_npu(pw)):
            continue
        a, b = dw.attrs, pw.attrs
        mid = dw.outputs[0]
        if not a.depthwise or a.input_dilation != (1, 1) or g.tensors[mid].shape[-1] != g.tensors[dw.inputs[0]].shape[-1]:
            continue
        w = g.tensors[pw.inputs[1]].shape
        if (b.depthwise or b.groups != 1 or tuple(w[1:3]) != (1, 1) or b.stride != (1, 1) or any(b.pads)
                or b.input_dilation != (1, 1) or pw.inputs[0] != mid):
            continue
        if mid in g.outputs or len(g.consumers(mid)) != 1:
            continue
        if any(g.tensors[t].dtype is not DType.I8 for t in (dw.inputs[0], mid, pw.outputs[0])):
            continue     # the fused band path is int8 only
        pairs[dw.name] = pw
    return pairs


def fusable_expansions(g: Graph, on_npu, pairs: dict[str, Node]) -> dict[str, Node]:
    """Depthwise node name (of a fusable pair) -> the expansion 1x1 convolution right before
    it (stride 1, no padding, groups 1, int8) whose output the depthwise alone reads, and
    which is not itself the 1x1 of another pair (a chain depthwise, 1x1, depthwise, 1x1
    keeps its pairs)."""
    out: dict[str, Node] = {}
    in_pairs = {pw.name for pw in pairs.values()}
    for ex, dw in zip(g.nodes, g.nodes[1:]):
        if dw.name not in pairs or ex.op is not Op.CONV2D or not on_npu(ex) or ex.name in in_pairs:
            continue
        b, mid = ex.attrs, ex.outputs[0]
        w = g.tensors[ex.inputs[1]].shape
        if (b.depthwise or b.groups != 1 or tuple(w[1:3]) != (1, 1) or b.stride != (1, 1) or any(b.pads)
                or b.input_dilation != (1, 1) or dw.inputs[0] != mid):
            continue
        if mid in g.outputs or len(g.consumers(mid)) != 1:
            continue
        if any(g.tensors[t].dtype is not DType.I8 for t in (ex.inputs[0], mid)):
            continue
        out[dw.name] = ex
    return out


def _params(g: Graph, node: Node, k: int) -> np.ndarray:
    bias = g.tensors[node.inputs[2]].data if len(node.inputs) > 2 else np.zeros(k, np.int64)
    return requant_params(bias, node.params, k, 0)


def plan_fused(ctx: Ctx, g: Graph, dw: Node, pw: Node, ex: Node | None = None) -> list[FusedTiling]:
    """The cheapest fused tilings by the closed forms (none: the pair, or with `ex` the
    expansion + pair, does not fit)."""
    x, mid, out = (g.tensors[n] for n in (dw.inputs[0], dw.outputs[0], pw.outputs[0]))
    _, h, wd, c = x.shape
    kh, kw = g.tensors[dw.inputs[1]].shape[1:3]
    a = dw.attrs
    s = ConvShape(h, wd, c, mid.shape[1], mid.shape[2], c, kh, kw, a.stride[0], a.dilation[0], 1, 1)
    o = ctx.options
    pref = ctx.arch.mxu.dataflow if o.dataflow == "arch" else o.dataflow
    first = (ex or dw).inputs[0]
    in_place = (ctx.space(first) == I.ABUF, ctx.space(pw.outputs[0]) == I.ABUF)
    bw = Bandwidth(ctx.bytes_per_cycle(first),
                   ctx.weight_bytes_per_cycle(pw.inputs[1], g.tensors[pw.inputs[1]].data),
                   ctx.bytes_per_cycle(pw.outputs[0]))
    cin = g.tensors[ex.inputs[0]].shape[-1] if ex else 0
    return search_fused(FusedShape(s, out.shape[-1], cin), ctx.arch, ctx.nbuf, pref, o.depthwise_engine,
                        o.max_tile_rows, ctx.arch.abuf_bytes - ctx.onchip_bytes, bw, in_place,
                        max(1, o.timed_candidates))


def lower_fused(ctx: Ctx, g: Graph, dw: Node, pw: Node, cands: list[FusedTiling], layers: tuple[int, ...],
                ex: Node | None = None) -> dict:
    """Lower the pair (with `ex`: the expansion + pair; `layers` holds each one's index)
    with whichever candidate the event model times fastest."""
    spaces = tuple(ctx.space(n) == I.ABUF for n in ((ex or dw).inputs[0], pw.outputs[0]))
    key = ("fused", tuple(cands), dw.attrs, g.tensors[dw.inputs[0]].shape, g.tensors[pw.outputs[0]].shape,
           g.tensors[dw.inputs[1]].shape, spaces, ctx.arch.fingerprint, ctx.nbuf, ctx.compression_key(pw.inputs[1]))
    if ex:
        key += (g.tensors[ex.inputs[0]].shape, ctx.compression_key(ex.inputs[1]))
    t = fastest(ctx, cands, lambda cx, t: _emit(cx, g, dw, pw, t, layers, ex), key,
                ctx.ratios.get(pw.inputs[1], 1.0))
    return _emit(ctx, g, dw, pw, t, layers, ex)


def _emit(ctx: Ctx, g: Graph, dw: Node, pw: Node, t: FusedTiling, layers: tuple[int, ...],
          ex: Node | None = None) -> dict:
    e = ctx.emitter
    x_shape, out_shape = g.tensors[dw.inputs[0]].shape, g.tensors[pw.outputs[0]].shape
    n, h, wd, c = x_shape
    _, eh, ew, k = out_shape
    a = dw.attrs
    kh, kw = g.tensors[dw.inputs[1]].shape[1:3]
    s = ConvShape(h, wd, c, eh, ew, c, kh, kw, a.stride[0], a.dilation[0], 1, 1)
    x_space, o_space = ctx.space((ex or dw).inputs[0]), ctx.space(pw.outputs[0])
    x_direct, o_direct = x_space == I.ABUF and t.tc == c and not ex, o_space == I.ABUF
    l_dw, l_pw = layers[-2:]
    a_slots, w_slots, acc_slots = ctx.slots()
    nb = ctx.nbuf
    chunks = [(c0, min(t.tc, c - c0)) for c0 in range(0, c, t.tc)]
    kblocks = [(k0, min(t.tk, k - k0)) for k0 in range(0, k, t.tk)]
    ins = None if x_direct else SlotPair(a_slots.take(rows_in(s, t.th) * wd * t.tc, nb))
    band = [a_slots.take(t.th * ew * t.tc, len(chunks)) for _ in range(nb)]
    outs = None if o_direct else SlotPair(a_slots.take(t.th * ew * t.tk, nb))
    accs = SlotPair(acc_slots.take(4 * t.th * ew * t.tk, nb))
    expand = _expansion(ctx, g, ex, t, chunks, (a_slots, w_slots, acc_slots), rows_in(s, t.th) * wd, layers[0]) \
        if ex else None
    # depthwise weights and params, and the 1x1 params: loaded once, each block its own slot
    w_dw, p_dw = g.tensors[dw.inputs[1]].data, _params(g, dw, c)
    w_pw, p_pw = g.tensors[pw.inputs[1]].data, _params(g, pw, k)
    wspace = ctx.consts.space
    e.layer = l_dw
    dw_w, dw_p = [], []
    for c0, cl in chunks:
        wa, pa = w_slots.take(kh * kw * t.tc, 1)[0], w_slots.take(12 * t.tc, 1)[0]
        dma(e, wspace, ctx.const(w_dw[:, :, :, c0:c0 + cl], True), (0,) * 4, I.WBUF, wa, (0,) * 4, (1,) * 4, kh * kw * cl)
        dma(e, wspace, ctx.const(p_dw[:, c0:c0 + cl], True), (0,) * 4, I.WBUF, pa, (0,) * 4, (1,) * 4, 12 * cl)
        dw_w.append(wa)
        dw_p.append(pa)
    e.layer = l_pw
    pw_p = []
    for k0, kl in kblocks:
        pa = w_slots.take(12 * t.tk, 1)[0]
        dma(e, wspace, ctx.const(p_pw[:, k0:k0 + kl], True), (0,) * 4, I.WBUF, pa, (0,) * 4, (1,) * 4, 12 * kl)
        pw_p.append(pa)
    w_addr = {(ki, ci): ctx.const(w_pw[k0:k0 + kl, :, :, c0:c0 + cl], True)
              for ki, (k0, kl) in enumerate(kblocks) for ci, (c0, cl) in enumerate(chunks)}
    if t.weights_resident:
        slots = {key: w_slots.take(t.tk * t.tc, 1)[0] for key in w_addr}
        wts = None
    else:
        wts = SlotPair(w_slots.take(t.tk * t.tc, nb))
    loaded: set = set()
    # one channel chunk and two input slots: a band's input rows that the previous band
    # also read are copied from its slot over the on-chip path instead of loaded again
    halo = not x_direct and len(chunks) == 1 and nb >= 2
    prev = (0, 0, -1)     # the last loaded band: slot, first and last input row
    eng = int(I.Engine.MXU if t.engine == "mxu" else I.Engine.VPU)
    pd, pp = dw.params, pw.params
    pt, pl = a.pads[0], a.pads[1]
    bands = []      # (batch, band, first output row, rows, first input row, last input row, window top)
    for b in range(n):
        for ri, r0 in enumerate(range(0, eh, t.th)):
            rl = min(t.th, eh - r0)
            y0 = r0 * s.sh - pt
            first = max(y0, 0)
            last = max(first, min((r0 + rl - 1) * s.sh - pt + s.dh * (kh - 1), h - 1))
            bands.append((b, ri, r0, rl, min(first, last), last, y0))  # an all-padding window reads one row

    def load(band, cis) -> dict[int, int]:
        """Bring chunks `cis` of a band's input into ABUF; chunk -> address."""
        nonlocal prev
        b, ri, _, _, first, last, _ = band
        x_base = 0 if ex else ctx.addr(dw.inputs[0]) + b * h * wd * c
        if x_direct:
            return {0: x_base + first * wd * c}
        out = {}
        e.layer = l_dw
        for ci in cis:
            c0, cl = chunks[ci]
            xa, _ = ins.lookup(("x", b, ri, ci))
            start = first
            if halo and ri > 0 and prev[2] >= first:   # rows the last band loaded: copy on chip
                start = prev[2] + 1
                contiguous(e, I.ABUF, prev[0] + (first - prev[1]) * wd * c, I.ABUF, xa, (start - first) * wd * c)
            if start <= last and expand:
                expand(b, ri, ci, start, last, xa + (start - first) * wd * chunks[ci][1])
                e.layer = l_dw
            elif start <= last:
                dma(e, x_space, x_base + start * wd * c + c0, (0, 0, 0, c), I.ABUF,
                    xa + (start - first) * wd * cl, (0, 0, 0, cl), (1, 1, 1, (last - start + 1) * wd), cl)
            prev = (xa, first, last)
            out[ci] = xa
        return out

    # a band's loads are issued ahead of the previous band's 1x1 and stores when every chunk
    # has its own slot; otherwise each chunk is loaded just before its DwConv
    ahead = range(len(chunks)) if len(chunks) <= nb else range(0)
    # with an expansion and more chunks than slots, the next chunk's rows are computed before
    # this chunk's DwConv (the MXU need not wait on the Requant between them)
    pipe = ex is not None and len(chunks) > nb >= 2
    if pipe:
        ahead = range(1)
    staged = load(bands[0], ahead)
    for j, (b, ri, r0, rl, first, last, y0) in enumerate(bands):
        o_base = ctx.addr(pw.outputs[0]) + b * eh * ew * k
        npix, n_rows, xas = rl * ew, last - first + 1, staged
        mids = band[j % nb]
        e.layer = l_dw
        for ci, (c0, cl) in enumerate(chunks):
            xa, ma = xas[ci] if ci in xas else load(bands[j], [ci])[ci], mids[ci]
            if pipe and ci + 1 < len(chunks):
                xas = xas | load(bands[j], [ci + 1])
            e.emit(lambda L, d, xa=xa, cl=cl, ci=ci, ma=ma: I.DwConv(
                L, d, src=xa, in_h=n_rows, in_w=wd, c=cl, wgt=dw_w[ci], params=dw_p[ci], dst=ma, out_h=rl,
                out_w=ew, mult=1, kernel=(kh, kw), stride=a.stride, dilation=a.dilation, pad_t=first - y0,
                pad_l=pl, zp=pd.input_zp, out_zp=pd.output_zp, act_min=pd.act_min, act_max=pd.act_max,
                engine=eng),
                [(I.ABUF, xa, xa + n_rows * wd * cl), (I.WBUF, dw_w[ci], dw_w[ci] + kh * kw * cl),
                 (I.WBUF, dw_p[ci], dw_p[ci] + 12 * cl)], [(I.ABUF, ma, ma + npix * cl)])
        if j + 1 < len(bands):   # the next band's loads go ahead of this band's stores on the port
            staged = load(bands[j + 1], ahead)
        e.layer = l_pw
        for ki, (k0, kl) in enumerate(kblocks):
            acc = accs.next()
            for ci, (c0, cl) in enumerate(chunks):
                if t.weights_resident:
                    wa, fetch = slots[ki, ci], (ki, ci) not in loaded
                    loaded.add((ki, ci))
                else:
                    wa, fetch = wts.lookup(("w", ki, ci))
                if fetch:
                    dma(e, wspace, w_addr[ki, ci], (0,) * 4, I.WBUF, wa, (0,) * 4, (1,) * 4, kl * cl)
                ma = mids[ci]
                writes = [(I.ACC, acc, acc + 4 * npix * kl)]
                e.emit(lambda L, d, ma=ma, cl=cl, wa=wa, ci=ci: I.Conv(
                    L, d, src=ma, in_h=rl, in_w=ew, c_stride=cl, c_off=0, c_len=cl, wgt=wa, dst=acc, out_h=rl,
                    out_w=ew, k=kl, kernel=(1, 1), stride=(1, 1), dilation=(1, 1), in_dil=(1, 1), pad_t=0,
                    pad_l=0, zp=pp.input_zp, accumulate=int(ci > 0), dataflow=t.dataflow),
                    [(I.ABUF, ma, ma + npix * cl), (I.WBUF, wa, wa + kl * cl)] + (writes if ci else []), writes)
            if o_direct:
                oa, o_stride, o_off = o_base + r0 * ew * k, k, k0
            else:
                oa, o_stride, o_off = outs.next(), kl, 0
            pa = pw_p[ki]
            e.emit(lambda L, d: I.Requant(
                L, d, src=acc, n_pix=npix, k=kl, params=pa, dst=oa, dst_pix_stride=o_stride, dst_c_off=o_off,
                out_zp=pp.output_zp, act_min=pp.act_min, act_max=pp.act_max, mode=0),
                [(I.ACC, acc, acc + 4 * npix * kl), (I.WBUF, pa, pa + 12 * kl)],
                [(I.ABUF, oa + o_off, oa + o_off + (npix - 1) * o_stride + kl)])
            if not o_direct:
                dma(e, I.ABUF, oa, (0, 0, 0, kl), o_space, o_base + r0 * ew * k + k0, (0, 0, 0, k),
                    (1, 1, 1, npix), kl)
    if ex:
        return {"tiling": f"fused with {dw.name}, {pw.name}: rows {t.th} x ch {t.tc} x out-ch {t.tk}, "
                          f"{'ws' if t.dataflow == costs.WS else 'os'}, depthwise on {t.engine}"
                          f"{', weights resident' if t.weights_resident else ''}, expansion {t.eg} px a group"}
    return {"tiling": f"fused with {pw.name}: rows {t.th} x ch {t.tc} x out-ch {t.tk}, "
                      f"{'ws' if t.dataflow == costs.WS else 'os'}, depthwise on {t.engine}"
                      f"{', weights resident' if t.weights_resident else ''}",
            "depthwise_taps": kh * kw}


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
    w, p = g.tensors[ex.inputs[1]].data, _params(g, ex, g.tensors[ex.outputs[0]].shape[-1])
    e.layer = layer
    params = []
    for c0, cl in chunks:
        pa = w_slots.take(12 * t.tc, 1)[0]
        dma(e, ctx.consts.space, ctx.const(p[:, c0:c0 + cl], True), (0,) * 4, I.WBUF, pa, (0,) * 4, (1,) * 4, 12 * cl)
        params.append(pa)
    w_addr = [ctx.const(w[c0:c0 + cl], True) for c0, cl in chunks]
    wts = OwnSlots(w_slots, t.tc * cin) if t.ex_resident else SlotPair(w_slots.take(t.tc * cin, nb))
    pe = ex.params

    def fill(b: int, ri: int, ci: int, first: int, last: int, dst: int) -> None:
        e.layer = layer
        n_pix, cl = (last - first + 1) * wd, chunks[ci][1]
        src = ctx.addr(ex.inputs[0]) + (b * h + first) * wd * cin
        if not direct:
            xa, fetch = xs.lookup(("x", b, ri))
            if fetch:
                contiguous(e, space, src, I.ABUF, xa, n_pix * cin)
            src = xa
        wa, fetch = wts.lookup(("w", ci))
        if fetch:
            dma(e, ctx.consts.space, w_addr[ci], (0,) * 4, I.WBUF, wa, (0,) * 4, (1,) * 4, cl * cin)
        for p0 in range(0, n_pix, t.eg):
            _group(src + p0 * cin, dst + p0 * cl, min(t.eg, n_pix - p0), cl, wa, params[ci])

    def _group(src: int, dst: int, n_pix: int, cl: int, wa: int, pa: int) -> None:
        acc = accs.next()
        e.emit(lambda L, d: I.Conv(
            L, d, src=src, in_h=1, in_w=n_pix, c_stride=cin, c_off=0, c_len=cin, wgt=wa, dst=acc,
            out_h=1, out_w=n_pix, k=cl, kernel=(1, 1), stride=(1, 1), dilation=(1, 1), in_dil=(1, 1),
            pad_t=0, pad_l=0, zp=pe.input_zp, accumulate=0, dataflow=t.dataflow),
            [(I.ABUF, src, src + n_pix * cin), (I.WBUF, wa, wa + cl * cin)], [(I.ACC, acc, acc + 4 * n_pix * cl)])
        e.emit(lambda L, d: I.Requant(
            L, d, src=acc, n_pix=n_pix, k=cl, params=pa, dst=dst, dst_pix_stride=cl, dst_c_off=0,
            out_zp=pe.output_zp, act_min=pe.act_min, act_max=pe.act_max, mode=0),
            [(I.ACC, acc, acc + 4 * n_pix * cl), (I.WBUF, pa, pa + 12 * cl)], [(I.ABUF, dst, dst + n_pix * cl)])
    return fill
