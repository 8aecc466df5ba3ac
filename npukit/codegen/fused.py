"""A depthwise convolution fused with the 1x1 convolution that is its only consumer.

Per row band: each channel chunk of the depthwise output is written by a DwConv into a
band buffer in ABUF (chunk-major, so a chunk is a contiguous [pixels, tc] block), then the
1x1 reduces over the chunks into ACC, is requantised and stored. The intermediate tensor
never goes off chip and gets no arena space. An expansion 1x1 convolution before the
depthwise (its output read by the depthwise alone) can join: per band and chunk, a Conv of
the expansion's input rows into ACC and a Requant write the depthwise's input rows straight
into its ABUF slot, so the expanded tensor never goes off chip either. Instructions carry
the layer they belong to, so the profile still reports each layer separately. This module
finds and plans the groups; codegen.bands emits them.
"""
from __future__ import annotations

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node, Op
from ..isa import instructions as I
from ..schedule.fused import FusedShape, FusedTiling, search_fused
from ..schedule.tiling import Bandwidth, ConvShape
from .bands import FusedBands
from .context import Ctx
from .replay import fastest


def fusable_pairs(g: Graph, on_npu) -> dict[str, Node]:
    """Depthwise node name -> the 1x1 convolution right after it that alone reads its output."""
    pairs: dict[str, Node] = {}
    for dw, pw in zip(g.nodes, g.nodes[1:]):
        if dw.op is not Op.CONV2D or pw.op is not Op.CONV2D or not (on_npu(dw) and on_npu(pw)):
            continue
        a, mid = dw.attrs, dw.outputs[0]
        if not a.depthwise or a.input_dilation != (1, 1) or g.tensors[mid].shape[-1] != g.tensors[dw.inputs[0]].shape[-1]:
            continue
        if not _plain_1x1(g, pw) or pw.inputs[0] != mid or not _read_once(g, mid):
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
        mid = ex.outputs[0]
        if not _plain_1x1(g, ex) or dw.inputs[0] != mid or not _read_once(g, mid):
            continue
        if any(g.tensors[t].dtype is not DType.I8 for t in (ex.inputs[0], mid)):
            continue
        out[dw.name] = ex
    return out


def _plain_1x1(g: Graph, node: Node) -> bool:
    """Whether `node` is a 1x1 convolution with stride 1, no padding and groups 1."""
    b, w = node.attrs, g.tensors[node.inputs[1]].shape
    return not (b.depthwise or b.groups != 1 or tuple(w[1:3]) != (1, 1) or b.stride != (1, 1) or any(b.pads)
                or b.input_dilation != (1, 1))


def _read_once(g: Graph, t: str) -> bool:
    """Whether tensor `t` is no graph output and has one consumer (fused, it is never stored)."""
    return t not in g.outputs and len(g.consumers(t)) == 1


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
                   ctx.weight_bytes_per_cycle(pw.inputs[1], g.tensors[pw.inputs[1]].const_data),
                   ctx.bytes_per_cycle(pw.outputs[0]))
    cin = g.tensors[ex.inputs[0]].shape[-1] if ex else 0
    return search_fused(FusedShape(s, out.shape[-1], cin), ctx.arch, ctx.nbuf, pref, o.depthwise_engine,
                        o.max_tile_rows, ctx.arch.abuf_bytes - ctx.onchip_bytes, bw, in_place,
                        max(1, o.timed_candidates), ctx.memo)


def choose_fused(ctx: Ctx, g: Graph, dw: Node, pw: Node, cands: list[FusedTiling], layers: tuple[int, ...],
                 ex: Node | None = None) -> FusedTiling:
    """Whichever candidate of the pair (with `ex`: the expansion + pair; `layers` holds each
    one's index) the event model times fastest."""
    spaces = tuple(ctx.space(n) == I.ABUF for n in ((ex or dw).inputs[0], pw.outputs[0]))
    key: tuple = ("fused", tuple(cands), dw.attrs, g.tensors[dw.inputs[0]].shape, g.tensors[pw.outputs[0]].shape,
           g.tensors[dw.inputs[1]].shape, spaces, ctx.arch.fingerprint, ctx.nbuf, ctx.compression_key(pw.inputs[1]))
    if ex:
        key += (g.tensors[ex.inputs[0]].shape, ctx.compression_key(ex.inputs[1]))
    return fastest(ctx, cands, lambda cx, t: FusedBands(cx, g, dw, pw, t, layers, ex).emit(), key,
                   ctx.ratios.get(pw.inputs[1], 1.0))


def lower_fused(ctx: Ctx, g: Graph, dw: Node, pw: Node, t: FusedTiling, layers: tuple[int, ...],
                ex: Node | None = None) -> None:
    """Emit the group with the schedule's tiling `t`."""
    c, k = g.tensors[dw.inputs[0]].shape[-1], g.tensors[pw.outputs[0]].shape[-1]
    ok = 1 <= t.th <= g.tensors[dw.outputs[0]].shape[1] and 1 <= t.tc <= c and 1 <= t.tk <= k
    ok = ok and t.engine in ("mxu", "vpu") and (t.eg >= 1 if ex else True)
    if not ok:
        raise ScheduleError(f"{dw.name}: fused tiling rows {t.th} x ch {t.tc} x out-ch {t.tk} does not fit "
                            f"the group ({c} -> {k} channels)")
    FusedBands(ctx, g, dw, pw, t, layers, ex).emit()
