"""Lowering of CONV2D (plain, grouped, transposed, depthwise) and FULLY_CONNECTED to tiles.

Weights are laid out in the constant image in tile order, so each weight tile is one
contiguous DMA; per-channel bias, multiplier and shift follow each output-channel block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..arch import Arch
from ..ir.graph import ConvAttrs, Graph, Node, Op
from ..isa import instructions as I
from ..schedule.tiling import Bandwidth, ConvShape, ConvTiling, one_row_fits, rows_in, search_conv
from ..errors import ScheduleError
from ..cost import costs
from .context import Ctx, OwnSlots, SlotPair
from .conv_depthwise import emit_depthwise
from .emitter import dma
from .replay import fastest


def requant_params(bias: np.ndarray, p, k: int, mode: int) -> np.ndarray:
    """The [3, k] parameter block a REQUANT (or DWCONV) of `mode` reads: bias and the
    per-channel scale, int32 for mode 0 (Q31 multiplier, shift), int64 for mode 1 (exact
    double scale as mantissa, exponent), mode 2 (16x8: int64 bias) and mode 3 (16x8 fully
    connected: mode 1's block)."""
    ones = np.ones(k, np.int64)
    if mode in (1, 3):   # LiteRT's fully connected requantises with the exact double scale
        return np.stack([bias.astype(np.int64), p.scale_mantissa * ones, p.scale_exponent * ones])
    if mode == 2:   # 16x8: int64 bias, the int64 form of the Q31 multiplier
        return np.stack([bias.astype(np.int64), p.multiplier * ones, p.shift * ones]).astype(np.int64)
    return np.stack([bias, p.multiplier * ones, p.shift * ones]).astype(np.int32)


@dataclass(frozen=True)
class ConvProblem:
    """A conv layer as its tiles see it (FULLY_CONNECTED as a 1x1 conv over its positions)."""
    shape: ConvShape
    attrs: ConvAttrs
    w: np.ndarray
    params: np.ndarray
    x_shape: tuple
    o_shape: tuple
    groups: int
    mode: int               # requantisation: 0 Q31, 1 exact double (fully connected), 2 16x8, 3 16x8 FC


def _columns(x_shape: tuple, o_shape: tuple, w: np.ndarray, attrs: ConvAttrs) -> tuple:
    """A one-row conv seen down its columns: [N, 1, W, C] and [N, W, 1, C] are the same bytes,
    so a 1 x kw kernel over one long row becomes a kw x 1 kernel over W rows, which tile."""
    def swap(p: tuple) -> tuple:
        return p[::-1]
    t, l, b, r = attrs.pads
    return ((x_shape[0], x_shape[2], 1, x_shape[3]), (o_shape[0], o_shape[2], 1, o_shape[3]),
            np.ascontiguousarray(w.transpose(0, 2, 1, 3)),
            replace(attrs, stride=swap(attrs.stride), dilation=swap(attrs.dilation), pads=(l, t, r, b),
                    input_dilation=swap(attrs.input_dilation)))


def _geometry(g: Graph, node: Node, fit: tuple | None) -> tuple:
    """(shape, attrs, weights, x shape, output shape, groups) of the layer as its tiles see it."""
    x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    w = g.tensors[node.inputs[1]].const_data
    k_all = out.shape[-1]
    if node.op is Op.FULLY_CONNECTED:   # a 1x1 conv over all leading positions
        n_pos = int(np.prod(x.shape[:-1]))
        x_shape: tuple[int, ...] = (1, 1, n_pos, x.shape[-1])
        o_shape: tuple[int, ...] = (1, 1, n_pos, k_all)
        w, attrs = w.reshape(w.shape[0], 1, 1, w.shape[1]), ConvAttrs()
    else:
        x_shape, o_shape, attrs = tuple(x.shape), tuple(out.shape), node.attrs
    _, h, wd, c = x_shape
    _, eh, ew, _ = o_shape
    kh, kw = w.shape[1:3]
    groups = 1 if attrs.depthwise else attrs.groups
    mult = k_all // c if attrs.depthwise else 0
    xb, ob = x.dtype.np.itemsize, out.dtype.np.itemsize
    shape = ConvShape(h, wd, c // groups, eh, ew, k_all // groups, kh, kw, attrs.stride[0],
                      attrs.dilation[0], attrs.input_dilation[0], mult, xb, ob)
    if fit is None or mult or wd == 1 or one_row_fits(shape, *fit):
        return shape, attrs, w, x_shape, o_shape, groups
    if h == eh == 1 and kh == 1 and attrs.pads[0] == attrs.pads[2] == 0:
        x_shape, o_shape, w, attrs = _columns(x_shape, o_shape, w, attrs)
        shape = ConvShape(wd, 1, c // groups, ew, 1, k_all // groups, kw, 1, attrs.stride[0],
                          attrs.dilation[0], attrs.input_dilation[0], mult, xb, ob)
    elif kh == kw == 1 and attrs.stride == attrs.input_dilation == (1, 1) and not any(attrs.pads):
        # a pointwise conv whose rows are too wide: [N, H, W, C] is [N, H * W, 1, C] in bytes
        x_shape, o_shape = (x_shape[0], h * wd, 1, c), (o_shape[0], eh * ew, 1, k_all)
        shape = replace(shape, h=h * wd, w=1, eh=eh * ew, ew=1)
    return shape, attrs, w, x_shape, o_shape, groups


def conv_problem(g: Graph, node: Node, fit: tuple | None = None) -> ConvProblem:
    """The layer's tiled problem; given `fit` (one_row_fits' arguments after the shape: working
    ABUF bytes, ACC bytes, buffers per tile, in place), a one-row conv whose smallest row tile
    does not fit is taken down its columns."""
    shape, attrs, w, x_shape, o_shape, groups = _geometry(g, node, fit)
    if shape.in_bytes == 2:
        wide_conv_check(node, attrs, shape.out_bytes)
    k_all = o_shape[-1]
    bias = (g.tensors[node.inputs[2]].const_data if len(node.inputs) > 2 else np.zeros(k_all, np.int64))
    mode = (3 if shape.in_bytes == 2 else 1) if node.op is Op.FULLY_CONNECTED else (2 if shape.in_bytes == 2 else 0)
    return ConvProblem(shape, attrs, w, requant_params(bias, node.params, k_all, mode), x_shape, o_shape,
                       groups, mode)


def _in_place(ctx: Ctx, node: Node) -> tuple[bool, bool]:
    """Whether the input / output is resident in ABUF, read and written there without tiles."""
    dw = getattr(node.attrs, "depthwise", False)
    return (ctx.space(node.inputs[0]) == I.ABUF and not dw, ctx.space(node.outputs[0]) == I.ABUF and not dw)


def _fit(ctx: Ctx, node: Node) -> tuple:
    return ctx.arch.abuf_bytes - ctx.onchip_bytes, ctx.arch.acc_bytes, ctx.nbuf, _in_place(ctx, node)


def _problem(ctx: Ctx, g: Graph, node: Node) -> ConvProblem:
    """`conv_problem` in this context, remembered by the compile (the graph is the schedule's)."""
    fit = _fit(ctx, node)
    return ctx.memo.get(ctx.memo.problems, (node.name, fit), lambda: conv_problem(g, node, fit))


def conv_support(g: Graph, node: Node, work_abuf: int, arch: Arch, nbuf: int, resident: int) -> str:
    """'' if some tiling of a (non-depthwise) conv or fully connected layer fits, else why not
    (`resident`: ABUF bytes that may hold whole tensors, which then need no tile buffers)."""
    if getattr(node.attrs, "depthwise", False):
        return ""
    may_stay = (g.tensors[node.inputs[0]].nbytes <= resident, g.tensors[node.outputs[0]].nbytes <= resident)
    fit = (work_abuf, arch.acc_bytes, nbuf, may_stay)
    s = _geometry(g, node, fit)[0]
    if not one_row_fits(s, *fit):
        return (f"no tiling fits: one output row ({s.ew} pixels from {rows_in(s, 1)} input rows of {s.w}) "
                f"needs more than ABUF {work_abuf} B or ACC {arch.acc_bytes} B")
    return ""


def choose_conv(ctx: Ctx, g: Graph, node: Node) -> ConvTiling:
    """The tiling the schedule takes: the cheapest by the closed forms, the event model timing
    the `timed_candidates` cheapest."""
    pr = _problem(ctx, g, node)
    o = ctx.options
    pref = ctx.arch.mxu.dataflow if o.dataflow == "arch" else o.dataflow
    in_place = _in_place(ctx, node)
    key = (pr.shape, ctx.arch.fingerprint, ctx.nbuf, pref, o.depthwise_engine, o.loop_order, o.max_tile_rows,
           ctx.arch.abuf_bytes - ctx.onchip_bytes,
           Bandwidth(ctx.bytes_per_cycle(node.inputs[0]), ctx.weight_bytes_per_cycle(node.inputs[1], pr.w),
                     ctx.bytes_per_cycle(node.outputs[0])), in_place)
    cands = search_conv(pr.shape, ctx.arch, *key[2:], top=max(1, o.timed_candidates), memo=ctx.memo)
    return fastest(ctx, cands, lambda cx, t: _emit(cx, node, pr, t),
                   ("conv", pr.x_shape[0], pr.groups, pr.mode, pr.attrs, *key, len(cands),
                    ctx.compression_key(node.inputs[1])), ctx.ratios.get(node.inputs[1], 1.0))


def lower_conv(ctx: Ctx, g: Graph, node: Node, t: ConvTiling) -> None:
    """Emit the layer with the schedule's tiling `t`."""
    pr = _problem(ctx, g, node)
    check_conv_tiling(node.name, pr.shape, t)
    _emit(ctx, node, pr, t)


def check_conv_tiling(name: str, s: ConvShape, t: ConvTiling) -> None:
    """A tiling within the layer's extents (a pinned schedule's is not trusted)."""
    dw = s.depthwise_mult > 0
    ok = 1 <= t.th <= s.eh and 1 <= t.tc <= s.c and (t.tk == t.tc * s.depthwise_mult if dw else 1 <= t.tk <= s.k)
    ok = ok and t.order in ("k_outer", "rows_outer") and t.engine in (("mxu", "vpu") if dw else ("mxu",))
    if not ok:
        raise ScheduleError(f"{name}: tiling rows {t.th} x out-ch {t.tk} x in-ch {t.tc} ({t.order}, {t.engine}) "
                            f"does not fit a {s.eh}-row, {s.c}-channel layer")


def _emit(cx: Ctx, node: Node, pr: ConvProblem, t: ConvTiling) -> None:
    n = pr.x_shape[0]
    for b in range(n):
        if pr.attrs.depthwise:
            emit_depthwise(cx, node, pr.shape, t, pr.attrs, pr.w, pr.params, b, pr.x_shape, pr.o_shape, pr.mode)
            continue
        for grp in range(pr.groups):
            _emit_nest(cx, node, pr.shape, t, pr.attrs, pr.w, pr.params, b, grp, pr.x_shape, pr.o_shape, pr.mode)


def conv_summary(t: ConvTiling) -> str:
    return (f"rows {t.th} x out-ch {t.tk} x in-ch {t.tc}, {t.order}, "
            f"{'ws' if t.dataflow == costs.WS else 'os'}, {t.engine}")


def _emit_nest(ctx, node, s: ConvShape, t: ConvTiling, attrs, w, params, b, grp, x_shape, o_shape, mode):
    e = ctx.emitter
    x_space, o_space = ctx.space(node.inputs[0]), ctx.space(node.outputs[0])
    _, h, wd, c_all = x_shape
    k_all = o_shape[-1]
    a_slots, w_slots, acc_slots = ctx.slots()
    nb = ctx.nbuf
    # a tensor resident in ABUF is read and written in place: no tile copies
    x_direct, o_direct = x_space == I.ABUF, o_space == I.ABUF
    xb, ob = s.in_bytes, s.out_bytes       # element sizes: int16 tensors move 2 bytes each
    ins = None if x_direct else SlotPair(a_slots.take(rows_in(s, t.th) * wd * t.tc * xb, nb))
    outs = None if o_direct else SlotPair(a_slots.take(t.th * s.ew * t.tk * ob, nb))
    pbytes = I.requant_param_bytes(mode)   # per output channel
    wts: OwnSlots | SlotPair
    prm: OwnSlots | SlotPair
    if t.w_resident:
        wts, prm = OwnSlots(w_slots, t.tk * s.kh * s.kw * t.tc), OwnSlots(w_slots, pbytes * t.tk)
    else:
        wts = SlotPair(w_slots.take(t.tk * s.kh * s.kw * t.tc, nb))
        prm = SlotPair(w_slots.take(pbytes * t.tk, nb))
    ab = 4 * xb             # accumulator bytes: int64 for the 16x8 passes
    accs = SlotPair(acc_slots.take(ab * t.th * s.ew * t.tk, nb))
    x_base = ctx.addr(node.inputs[0]) + b * h * wd * c_all * xb
    o_base = ctx.addr(node.outputs[0]) + b * s.eh * s.ew * k_all * ob
    pt, pl = attrs.pads[0], attrs.pads[1]
    ih = attrs.input_dilation[0]
    h_dil = (h - 1) * ih + 1
    chunks = [(c0, min(t.tc, s.c - c0)) for c0 in range(0, s.c, t.tc)]
    kblocks = [(k0, min(t.tk, s.k - k0)) for k0 in range(0, s.k, t.tk)]
    rblocks = [(r0, min(t.th, s.eh - r0)) for r0 in range(0, s.eh, t.th)]
    # weight and parameter blocks in tile order, in the constant image
    names: list = []
    blocks: list[np.ndarray] = []
    for ki, (k0, kl) in enumerate(kblocks):
        kg = grp * s.k + k0
        names.append(("p", ki))
        blocks.append(params[:, kg:kg + kl])
        for ci, (c0, cl) in enumerate(chunks):
            names.append(("w", ki, ci))
            blocks.append(w[kg:kg + kl, :, :, c0:c0 + cl])
    at = dict(zip(names, ctx.consts_many(blocks, True)))
    p_addr = {ki: at["p", ki] for ki in range(len(kblocks))}
    w_addr = {(ki, ci): at["w", ki, ci] for ki in range(len(kblocks)) for ci in range(len(chunks))}
    wspace = ctx.consts.space
    if t.order == "rows_outer":
        nest = [(ki, ri) for ri in range(len(rblocks)) for ki in range(len(kblocks))]
    else:
        nest = [(ki, ri) for ki in range(len(kblocks)) for ri in range(len(rblocks))]
    def rows_of(ri: int) -> tuple[int, int, int]:
        """(window top, first and last real input row) of row block `ri`."""
        r0, rl = rblocks[ri]
        y0 = r0 * s.sh - pt
        y1 = (r0 + rl - 1) * s.sh - pt + s.dh * (s.kh - 1)
        return y0, -(-max(y0, 0) // ih), min(y1, h_dil - 1) // ih

    def bands(ri: int) -> int:
        """The height of the bands of rows a dilated conv's kernel rows read, when row block `ri`
        loads only those kh bands (taps that leave rows out between them, all rows inside the
        input, loaded through tiles); 0: the tile loads its whole window of rows."""
        r0, rl = rblocks[ri]
        bh = (rl - 1) * s.sh + 1
        return 0 if ins is None or ih != 1 or s.kh < 2 or bh >= s.dh else bh

    def load_bands(ri: int, xa: int, src: int, cl: int, bh: int) -> None:
        """The kh bands of row block `ri` packed at `xa`: one strided DMA when all their rows
        are the input's, else a DMA of each band's real rows and the input zero point (the
        conv's padding) filled in for the rest."""
        y0 = rblocks[ri][0] * s.sh - pt
        row = wd * cl * xb                    # one packed row
        if y0 >= 0 and y0 + (s.kh - 1) * s.dh + bh <= h:
            dma(e, x_space, src + y0 * wd * c_all * xb, (0, 0, s.dh * wd * c_all * xb, c_all * xb), I.ABUF, xa,
                (0, 0, bh * row, cl * xb), (1, 1, s.kh, bh * wd), cl * xb)
            return
        fill = node.params.input_zp & 0xFF
        for i in range(s.kh):
            top = y0 + i * s.dh
            lo, hi = max(top, 0), min(top + bh, h)       # the band's real rows [lo, hi)
            dst = xa + i * bh * row
            if lo >= hi:
                e.emit(lambda L, d, dst=dst: I.Fill(L, d, I.ABUF, dst, bh * row, fill))
                continue
            if lo > top:
                e.emit(lambda L, d, dst=dst, n=(lo - top) * row: I.Fill(L, d, I.ABUF, dst, n, fill))
            dma(e, x_space, src + lo * wd * c_all * xb, (0, 0, 0, c_all * xb), I.ABUF, dst + (lo - top) * row,
                (0, 0, 0, cl * xb), (1, 1, 1, (hi - lo) * wd), cl * xb)
            if hi < top + bh:
                e.emit(lambda L, d, dst=dst + (hi - top) * row, n=(top + bh - hi) * row:
                       I.Fill(L, d, I.ABUF, dst, n, fill))

    def fetch(ki: int, ri: int, ci: int) -> tuple[int, int, int, int]:
        """Load (unless resident) a tile's input chunk and weights: (x addr, stride, offset, w addr)."""
        _, a, last = rows_of(ri)
        c0, cl = chunks[ci]
        if ins is None:    # the rows in place (x_direct): all channels, this chunk selected by c_off
            xa, x_stride, x_off = x_base + a * wd * c_all * xb, c_all, grp * s.c + c0
        else:
            xa, load = ins.lookup(("x", ri, ci))
            x_stride, x_off = cl, 0
            bh = bands(ri)
            if load and bh:     # kh bands of bh rows, dilation rows apart, packed one after another
                load_bands(ri, xa, x_base + (grp * s.c + c0) * xb, cl, bh)
            elif load:
                dma(e, x_space, x_base + (a * wd * c_all + grp * s.c + c0) * xb, (0, 0, 0, c_all * xb), I.ABUF,
                    xa, (0, 0, 0, cl * xb), (1, 1, 1, (last - a + 1) * wd), cl * xb)
        wa, load = wts.lookup(("w", ki, ci))
        if load:
            dma(e, wspace, w_addr[ki, ci], (0,) * 4, I.WBUF, wa, (0,) * 4, (1, 1, 1, 1),
                kblocks[ki][1] * s.kh * s.kw * cl)
        return xa, x_stride, x_off, wa

    staged = None     # with one input chunk, the next tile's loads go ahead of this tile's stores
    for step, (ki, ri) in enumerate(nest):
        (k0, kl), (r0, rl) = kblocks[ki], rblocks[ri]
        y0, a, last = rows_of(ri)
        acc = accs.next()
        my_chunks = list(enumerate(chunks))
        if a > last:   # the whole tile reads padding only: its accumulators are zero
            e.emit(lambda L, d, acc=acc: I.Fill(L, d, I.ACC, acc, ab * rl * s.ew * kl, 0))
            my_chunks = []
        bh = bands(ri)       # packed bands: their rows bh apart, none of them padding
        for j, (ci, (c0, cl)) in enumerate(my_chunks):
            n_rows = s.kh * bh if bh else last - a + 1
            xa, x_stride, x_off, wa = staged if staged is not None and j == 0 else fetch(ki, ri, ci)
            geo = dict(out_h=rl, out_w=s.ew, kernel=(s.kh, s.kw), stride=attrs.stride,
                       dilation=(bh, attrs.dilation[1]) if bh else attrs.dilation, pad_t=0 if bh else a * ih - y0,
                       pad_l=pl)
            e.emit(lambda L, d: I.Conv(
                L, d, src=xa, in_h=n_rows, in_w=wd, c_stride=x_stride, c_off=x_off, c_len=cl, wgt=wa, dst=acc,
                k=kl, in_dil=attrs.input_dilation, zp=node.params.input_zp, accumulate=int(j > 0),
                dataflow=t.dataflow, in_bytes=xb, **geo))
        staged = None
        if len(chunks) == 1 and step + 1 < len(nest):
            nk, nr = nest[step + 1]
            _, na, nlast = rows_of(nr)
            if na <= nlast:
                staged = fetch(nk, nr, 0)
        pa, load = prm.lookup(("p", ki))
        if load:
            dma(e, wspace, p_addr[ki], (0,) * 4, I.WBUF, pa, (0,) * 4, (1, 1, 1, 1), pbytes * kl)
        npix = rl * s.ew
        p = node.params
        if outs is None:       # (o_direct) requantise straight into the resident output's rows
            oa, o_stride, o_off = o_base + r0 * s.ew * k_all * ob, k_all, grp * s.k + k0
        else:
            oa, o_stride, o_off = outs.next(), kl, 0
        e.emit(lambda L, d: I.Requant(
            L, d, src=acc, n_pix=npix, k=kl, params=pa, dst=oa, dst_pix_stride=o_stride, dst_c_off=o_off,
            out_zp=p.output_zp, act_min=p.act_min, act_max=p.act_max, mode=mode))
        if not o_direct:
            dst = o_base + (r0 * s.ew * k_all + grp * s.k + k0) * ob
            dma(e, I.ABUF, oa, (0, 0, 0, kl * ob), o_space, dst, (0, 0, 0, k_all * ob), (1, 1, 1, npix), kl * ob)


def conv_macs(g: Graph, node: Node) -> int:
    out = g.tensors[node.outputs[0]]
    w = g.tensors[node.inputs[1]]
    if node.op is Op.FULLY_CONNECTED:
        return int(np.prod(out.shape)) * w.shape[1]
    per_out = w.shape[1] * w.shape[2] * (1 if node.attrs.depthwise else w.shape[3])
    return int(np.prod(out.shape)) * per_out


def conv_min_compute_cycles(g: Graph, node: Node, arch: Arch) -> int:
    return math.ceil(conv_macs(g, node) / (arch.mxu.rows * arch.mxu.cols))



def wide_conv_check(node: Node, attrs: ConvAttrs, out_bytes: int) -> None:
    """What the 16x8 paths run: a dense or depthwise conv or a fully connected layer, int16 in
    and out, zero point 0."""
    if attrs.groups != 1 and not attrs.depthwise or out_bytes != 2 or node.params.input_zp != 0:
        raise ScheduleError(f"{node.name}: int16 input is supported for dense and depthwise convolutions and "
                            "fully connected layers with int16 output and zero point 0 only")
