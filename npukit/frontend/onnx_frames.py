"""Video frames: a 3-D Conv, MaxPool or AveragePool over [N, C, D, H, W] as 2-D ops on its
frames (slices of the depth axis), combined over the kernel's depth taps and stacked again.

Output frame f reads input frames f * stride + k * dilation - pad for the depth taps k that
land on a frame (a tap on a padding frame adds nothing): a conv sums the taps' 2-D convs by
the kernel's slice k, a max pool takes the largest of the taps' 2-D max pools, an average pool
the mean of the taps' 2-D average pools (over the taps in the padded extent when padding
counts, else over the frames read: the 2-D pools have each tap's own count of pixels, the
same for every tap).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import ConcatAttrs, EltwiseAttrs, Op, SliceAttrs
from .onnx_builder import Builder
from .onnx_const import attributes

Emit2d = Callable[[Builder, object], None]      # a 2-D op's converter: (builder, ONNX node)


def depth_pads(at: dict, d: int, kd: int, sd: int, dd: int) -> tuple[int, int]:
    """A 3-D op's padding before and after the depth (frame) axis."""
    auto = at.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = max((math.ceil(d / sd) - 1) * sd + (kd - 1) * dd + 1 - d, 0)
        small = total // 2
        return (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
    pads = list(at.get("pads", [0] * 6)) if auto != "VALID" else [0] * 6
    return pads[0], pads[3]


def _attrs_2d(at: dict, keep: tuple[str, ...]) -> dict:
    """The 2-D op's attributes: the 3-D ones without their depth entries."""
    out = {k: v[1:] for k, v in at.items() if k in ("kernel_shape", "strides", "dilations")}
    out |= {k: v for k, v in at.items() if k in keep}
    if "pads" in at:
        out["pads"] = list(at["pads"][1:3]) + list(at["pads"][4:6])
    return out


class _Frames:
    """The input's frames as 4-D ONNX values, each sliced once, when first read."""

    def __init__(self, b: Builder, name: str, out: str):
        self.b, self.src, self.out = b, b.onnx_layout(name), out
        self.made: dict[int, str] = {}
        self.n, self.c, self.d, self.h, self.w = b.act(name).shape

    def __call__(self, i: int) -> str:
        if i not in self.made:
            b, n, c, h, w = self.b, self.n, self.c, self.h, self.w
            sliced = b.emit(Op.SLICE, [self.src], SliceAttrs((0, 0, i, 0, 0), (n, c, i + 1, h, w), (1,) * 5),
                            b.fresh(f"{self.out}/frame{i}"))
            self.made[i] = b.fresh(f"{self.out}/frame{i}_2d")
            b.reshape_to_onnx(self.made[i], sliced, (n, c, h, w))
        return self.made[i]


def _stack(b: Builder, out: str, frames: list[str]) -> None:
    """The 4-D output frames as the 5-D output `out`, frame after frame on the depth axis."""
    pieces = []
    for f, frame in enumerate(frames):
        n, k, oh, ow = b.act(frame).shape
        pieces.append(b.fresh(f"{out}/frame{f}_out"))
        b.reshape_to_onnx(pieces[-1], b.onnx_layout(frame), (n, k, 1, oh, ow))
    if len(pieces) == 1:
        b.alias(out, pieces[0])
    else:
        b.emit_result(out, Op.CONCAT, [b.onnx_layout(p) for p in pieces], ConcatAttrs(2), nhwc=False)


def _combine(b: Builder, op: Op, parts: list[str], name: str) -> str:
    acc = parts[0]
    for j, part in enumerate(parts[1:]):
        total = b.fresh(f"{name}_{j}")
        b.emit_result(total, op, [b.nhwc(acc), b.nhwc(part)], EltwiseAttrs(), nhwc=True)
        acc = total
    return acc


def conv_frames(b: Builder, node, w: np.ndarray, conv2d: Emit2d) -> None:
    """A 3-D Conv (weights [K, C / g, kd, kh, kw]) as 2-D convs of its frames (RivaGAN's frames
    of depth 1 are one 2-D conv each)."""
    from onnx import helper
    at, out = attributes(node), node.output[0]
    d, kd = b.act(node.input[0]).shape[2], w.shape[2]
    sd, dd = (at.get("strides") or [1])[0], (at.get("dilations") or [1])[0]
    pd0, pd1 = depth_pads(at, d, kd, sd, dd)
    attrs = _attrs_2d(at, ("group", "auto_pad"))
    frame, outs = _Frames(b, node.input[0], out), []
    for f in range((d + pd0 + pd1 - (kd - 1) * dd - 1) // sd + 1):
        taps = [(k, f * sd + k * dd - pd0) for k in range(kd) if 0 <= f * sd + k * dd - pd0 < d]
        if not taps:
            raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: a 3-D Conv output frame ({f}) "
                                     "that reads only padding")
        parts = []
        for j, (k, i) in enumerate(taps):
            w2, parts_k = b.fresh(f"{out}/weight{k}"), b.fresh(f"{out}/frame{f}_tap{k}")
            b.values[w2] = w[:, :, k]
            conv2d(b, helper.make_node("Conv", [frame(i), w2, *(node.input[2:3] if j == 0 else [])], [parts_k],
                                       name=node.name, **attrs))
            parts.append(parts_k)
        outs.append(_combine(b, Op.ADD, parts, f"{out}/frame{f}_sum"))
    _stack(b, out, outs)


def pool_frames(b: Builder, node, op: Op, pool2d: Emit2d) -> None:
    """A 3-D MaxPool or AveragePool as 2-D pools of its frames."""
    from onnx import helper
    at, out = attributes(node), node.output[0]
    d, kd = b.act(node.input[0]).shape[2], at["kernel_shape"][0]
    sd, dd = (at.get("strides") or [1])[0], (at.get("dilations") or [1])[0]
    pd0, pd1 = depth_pads(at, d, kd, sd, dd)
    span = d + pd0 + pd1 - (kd - 1) * dd - 1
    frames_out = span // sd + 1
    if at.get("ceil_mode", 0):      # a last, partial window, if it starts inside the input
        frames_out = -(-span // sd) + 1
        frames_out -= (frames_out - 1) * sd >= d + pd0
    attrs = _attrs_2d(at, ("auto_pad", "ceil_mode", "count_include_pad"))
    frame, outs = _Frames(b, node.input[0], out), []
    for f in range(frames_out):
        reads = [f * sd + k * dd - pd0 for k in range(kd)]
        taps = [i for i in reads if 0 <= i < d]
        if not taps:
            raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: a 3-D pool output frame ({f}) "
                                     "that reads only padding")
        parts = []
        for i in taps:
            parts.append(b.fresh(f"{out}/frame{f}_tap{i}"))
            pool2d(b, helper.make_node(node.op_type, [frame(i)], [parts[-1]], name=node.name, **attrs))
        if op is Op.MAX_POOL:
            outs.append(_combine(b, Op.MAXIMUM, parts, f"{out}/frame{f}_max"))
            continue
        counted = sum(-pd0 <= i < d + pd1 for i in reads) if at.get("count_include_pad", 0) else len(taps)
        total = _combine(b, Op.ADD, parts, f"{out}/frame{f}_sum")
        if counted == 1:
            outs.append(total)
            continue
        scale = b.fresh(f"{out}/frame{f}_scale")
        b.values[scale] = np.asarray(1.0 / counted, np.float32)
        outs.append(b.fresh(f"{out}/frame{f}_mean"))
        b.emit_result(outs[-1], Op.MUL, [b.nhwc(total), b.operand(scale, 4)], EltwiseAttrs(), nhwc=True)
    _stack(b, out, outs)
