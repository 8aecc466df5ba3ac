"""RESIZE on the VPU: whole planes of a channel block where they fit ABUF, else bands of
output rows with the input rows they read (the Resize instruction's band fields)."""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..isa import instructions as I
from ..kernels.kernels_vpu_pool import resize_band_rows
from .context import Ctx, SlotPair
from .emitter import dma

BAND_ROWS = 4       # output rows a band holds at least before it holds fewer channels


def resize_fits(g: Graph, node: Node, abuf_bytes: int) -> bool:
    """Resize tiles hold bands of whole rows of one channel block: at least one output row and
    the (at most two) input rows it reads, of one channel, must fit, double-buffered."""
    _, _, w, _ = g.tensors[node.inputs[0]].shape
    _, ow = node.attrs.size
    return 2 * (2 * w + ow) * g.tensors[node.inputs[0]].dtype.itemsize + 64 <= abuf_bytes


def resize_bands(node: Node, h: int, w: int, room: int, eb: int) -> list[tuple[int, int, int, int]]:
    """(output rows r0, r1, input rows i0, i1) of each band of one channel in `room` bytes: one,
    the whole plane, where it fits; else bands of as many output rows as fit with the input
    rows they read."""
    oh, ow = node.attrs.size
    if (h * w + oh * ow) * eb <= room:
        return [(0, oh, 0, h)]
    a, bilinear = node.attrs, node.attrs.mode == "bilinear"

    def bands(rows: int) -> list[tuple[int, int, int, int]]:
        return [(r0, min(r0 + rows, oh), *resize_band_rows(bilinear, h, oh, a.align_corners, a.half_pixel_centers,
                                                               r0, min(r0 + rows, oh))) for r0 in range(0, oh, rows)]
    rows = max(1, min(oh, room // ((w * max(1, -(-h // oh)) + ow) * eb)))
    while rows > 1 and max((i1 - i0) * w + (r1 - r0) * ow for r0, r1, i0, i1 in bands(rows)) * eb > room:
        rows -= max(1, rows // 8)
    return bands(rows)


def resize_tiles(node: Node, h: int, w: int, c: int, room: int, eb: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(channels a tile holds, its bands). A whole plane of one channel that fits takes as many
    channels as fit; else the most channels (whole pixels: long DMA bursts) whose bands still
    hold BAND_ROWS output rows, down to one channel."""
    bands = resize_bands(node, h, w, room, eb)
    if len(bands) == 1:
        return max(1, min(c, room // ((h * w + node.attrs.size[0] * node.attrs.size[1]) * eb))), bands
    cb = c
    while cb > 1 and (bands := resize_bands(node, h, w, room // cb, eb))[0][1] < min(BAND_ROWS, node.attrs.size[0]):
        cb = (cb + 1) // 2
    return cb, bands if cb > 1 else resize_bands(node, h, w, room, eb)


def lower_resize(ctx: Ctx, g: Graph, node: Node) -> dict:
    e, a = ctx.emitter, node.attrs
    n, h, w, c = g.tensors[node.inputs[0]].shape
    oh, ow = a.size
    eb = g.tensors[node.inputs[0]].dtype.itemsize       # 2: int16 (16x8)
    a_slots, _, _ = ctx.slots()
    room = a_slots.size // ctx.nbuf - 32
    cb, bands = resize_tiles(node, h, w, c, room, eb)
    in_rows, out_rows = max(i1 - i0 for *_, i0, i1 in bands), max(r1 - r0 for r0, r1, *_ in bands)
    ins = SlotPair(a_slots.take(in_rows * w * cb * eb, ctx.nbuf))
    outs = SlotPair(a_slots.take(out_rows * ow * cb * eb, ctx.nbuf))
    src, dst = ctx.addr(node.inputs[0]), ctx.addr(node.outputs[0])
    mode = int(a.mode == "bilinear")
    for b in range(n):
        for c0 in range(0, c, cb):
            cl = min(cb, c - c0)
            for r0, r1, i0, i1 in bands:
                xa, oa = ins.next(), outs.next()
                dma(e, ctx.space(node.inputs[0]), src + ((b * h + i0) * w * c + c0) * eb, (0, 0, 0, c * eb), I.ABUF,
                    xa, (0, 0, 0, cl * eb), (1, 1, 1, (i1 - i0) * w), cl * eb)
                band = {} if len(bands) == 1 else dict(row0=r0, in_row0=i0, whole_in_h=h, whole_out_h=oh)
                e.emit(lambda L, d: I.Resize(L, d, mode, xa, i1 - i0, w, cl, oa, r1 - r0, ow, int(a.align_corners),
                                             int(a.half_pixel_centers), eb, **band))
                dma(e, I.ABUF, oa, (0, 0, 0, cl * eb), ctx.space(node.outputs[0]),
                    dst + ((b * oh + r0) * ow * c + c0) * eb, (0, 0, 0, c * eb), (1, 1, 1, (r1 - r0) * ow), cl * eb)
    return {}
