"""ONNX converters for the weighted and pooling layers: Conv, ConvTranspose, Gemm, MatMul,
BatchNormalization, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import (ConvAttrs, EltwiseAttrs, FcAttrs, MeanAttrs, Op, PadAttrs, PoolAttrs,
                        ReshapeAttrs, SliceAttrs, TransposeAttrs)
from .onnx_builder import Builder, TO_NHWC
from .onnx_frames import conv_frames, pool_frames
from .onnx_const import attributes


def _unsupported(b: Builder, what: str):
    return UnsupportedOpError(f"ONNX node {b.source[-1]!r}: {what}")


def _weight(b: Builder, name: str, what: str = "weight") -> np.ndarray:
    """A constant weight as float32; non-finite values (no int8 scale fits them) are refused."""
    w = b.const(name, what).astype(np.float32)
    if not np.all(np.isfinite(w)):
        raise ModelError(f"{what} {name!r} of ONNX node {b.source[-1]!r} holds non-finite values (inf or NaN)")
    return w


def _spatial_pads(b: Builder, at: dict, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ONNX pads / auto_pad."""
    auto = at.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        p = list(at.get("pads", [0] * 4)) if auto == "NOTSET" else [0] * 4
        return (p[0], p[1], p[2], p[3])
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise _unsupported(b, f"auto_pad {auto!r}")
    begin, end = [], []
    for n, k, s, d in zip(in_hw, kernel, stride, dilation):
        total = max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
        small = total // 2
        begin.append(small if auto == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return (begin[0], begin[1], end[0], end[1])


def _as_2d(b: Builder, node, name: str) -> tuple[str, bool]:
    """NHWC IR tensor of a 4-D input, or of a 3-D [N, C, L] input viewed as [N, 1, L, C]."""
    a = b.act(name)
    if a.rank == 4:
        return a.ir, False
    if a.rank == 3:
        src = b.onnx_layout(name)
        n, c, length = a.shape
        r = b.emit(Op.RESHAPE, [src], ReshapeAttrs((n, c, 1, length)), b.fresh(name + "_2d"))
        return b.emit(Op.TRANSPOSE, [r], TransposeAttrs(TO_NHWC), b.fresh(name + "_2d_nhwc")), True
    raise _unsupported(b, f"{node.op_type} on a {a.rank}-D input is not supported")


def _finish_2d(b: Builder, onnx_name: str, op: Op, inputs, attrs, was_1d: bool) -> None:
    if not was_1d:
        b.emit_result(onnx_name, op, inputs, attrs, nhwc=True)
        return
    y = b.emit(op, inputs, attrs, b.fresh(onnx_name + "_2d"))
    n, _, length, c = b.tensors[y].shape
    t = b.emit(Op.TRANSPOSE, [y], TransposeAttrs((0, 3, 1, 2)), b.fresh(onnx_name + "_2d_nchw"))
    b.reshape_to_onnx(onnx_name, t, (n, c, length))


def _conv_geometry(at: dict, w: np.ndarray, was_1d: bool):
    k = tuple(w.shape[2:])          # (1, K) for a 1-D conv: `w` is already [.., 1, K]
    spatial = len(k) - 1 if was_1d else len(k)
    strides = tuple(at.get("strides", [1] * spatial))
    dilations = tuple(at.get("dilations", [1] * spatial))
    if was_1d:
        strides, dilations = (1,) + strides, (1,) + dilations
        if "pads" in at:
            at = {**at, "pads": [0, at["pads"][0], 0, at["pads"][1]]}
    return at, k, strides, dilations


def conv(b: Builder, node) -> None:
    if b.act(node.input[0]).rank == 5:
        w = _weight(b, node.input[1])
        if w.ndim != 5:
            raise ModelError(f"Conv node {b.source[-1]!r}: 5-D input with weights of shape {list(w.shape)}")
        conv_frames(b, node, w, conv)
        return
    at = attributes(node)
    x, was_1d = _as_2d(b, node, node.input[0])
    w = _weight(b, node.input[1])
    if was_1d:
        w = w[:, :, None, :]
    bias = b.opt_const(node, 2)
    at, k, strides, dilations = _conv_geometry(at, w, was_1d)
    _, in_h, in_w, c_in = b.tensors[x].shape
    groups, out_ch = int(at.get("group", 1)), w.shape[0]
    pads = _spatial_pads(b, at, (in_h, in_w), k, strides, dilations)
    depthwise = groups == c_in and groups > 1 and w.shape[1] == 1
    w_ir = w.transpose(1, 2, 3, 0) if depthwise else w.transpose(0, 2, 3, 1)
    bias = np.zeros(out_ch, np.float32) if bias is None else bias.astype(np.float32)
    attrs = ConvAttrs(strides, dilations, pads, 1 if depthwise else groups, depthwise=depthwise)
    wt = b.add_const(w_ir, node.input[1])
    bt = b.add_const(bias, node.input[2] if len(node.input) > 2 and node.input[2] else node.output[0] + "_bias")
    _finish_2d(b, node.output[0], Op.CONV2D, [x, wt, bt], attrs, was_1d)


def conv_transpose(b: Builder, node) -> None:
    at = attributes(node)
    x, was_1d = _as_2d(b, node, node.input[0])
    w = _weight(b, node.input[1])     # [C_in, C_out / g, kh, kw]
    if was_1d:
        w = w[:, :, None, :]
    bias = b.opt_const(node, 2)
    at, k, strides, dilations = _conv_geometry(at, w, was_1d)
    _, in_h, in_w, c_in = b.tensors[x].shape
    groups = int(at.get("group", 1))
    cout_g = w.shape[1]
    out_ch = cout_g * groups
    out_pad = list(at.get("output_padding", [0] * 2))
    if was_1d:
        out_pad = [0] + out_pad[-1:]
    full = [s * (n - 1) + op + (kk - 1) * d + 1 for s, n, op, kk, d in
            zip(strides, (in_h, in_w), out_pad, k, dilations)]
    if "output_shape" in at:
        want = list(at["output_shape"])[-2:] if not was_1d else [1] + list(at["output_shape"])[-1:]
        total = [f - o for f, o in zip(full, want)]
        upper = at.get("auto_pad", "NOTSET") == "SAME_UPPER"
        begin = [t // 2 if upper else t - t // 2 for t in total]
        pads = (begin[0], begin[1], total[0] - begin[0], total[1] - begin[1])
    elif at.get("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        total = [f - n * s for f, n, s in zip(full, (in_h, in_w), strides)]
        upper = at["auto_pad"] == "SAME_UPPER"
        begin = [t // 2 if upper else t - t // 2 for t in total]
        pads = (begin[0], begin[1], total[0] - begin[0], total[1] - begin[1])
    else:
        pads = tuple(at.get("pads", [0] * 4)) if at.get("auto_pad", "NOTSET") == "NOTSET" else (0,) * 4
    t, l, bo, r = pads
    (dh, dw), (kh, kw) = dilations, k
    ir_pads = (dh * (kh - 1) - t, dw * (kw - 1) - l, dh * (kh - 1) - bo + out_pad[0],
               dw * (kw - 1) - r + out_pad[1])
    if min(ir_pads) < 0:
        raise _unsupported(b, f"ConvTranspose padding {pads} exceeds the kernel extent")
    flipped = w[:, :, ::-1, ::-1]
    # a depthwise transposed conv too is a grouped one (groups = channels, one input channel
    # each): the NPU's depthwise instruction has no input dilation
    cin_g = c_in // groups
    wg = flipped.reshape(groups, cin_g, cout_g, kh, kw)         # per group: [cin_g, cout_g, kh, kw]
    w_ir = wg.transpose(0, 2, 3, 4, 1).reshape(out_ch, kh, kw, cin_g)
    attrs = ConvAttrs((1, 1), dilations, ir_pads, groups, strides)
    bias = np.zeros(out_ch, np.float32) if bias is None else bias.astype(np.float32)
    wt = b.add_const(w_ir, node.input[1])
    bt = b.add_const(bias, node.output[0] + "_bias")
    _finish_2d(b, node.output[0], Op.CONV2D, [x, wt, bt], attrs, was_1d)


def _fc(b: Builder, out: str, src: str, weight: np.ndarray, bias: np.ndarray, weight_name: str,
        final: bool = True) -> str:
    """FULLY_CONNECTED of ONNX-layout IR tensor `src`; `final` records it as ONNX value `out`."""
    wt = b.add_const(weight, weight_name)
    bt = b.add_const(bias, out + "_bias")
    if final:
        return b.emit_result(out, Op.FULLY_CONNECTED, [src, wt, bt], FcAttrs(), nhwc=False)
    return b.emit(Op.FULLY_CONNECTED, [src, wt, bt], FcAttrs(), b.fresh(out + "_fc"))


def gemm(b: Builder, node) -> None:
    at = attributes(node)
    if b.act(node.input[0]).rank != 2:
        raise _unsupported(b, "Gemm of a non-2-D input")
    src = b.onnx_layout(node.input[0])
    if at.get("transA", 0):
        src = b.emit(Op.TRANSPOSE, [src], TransposeAttrs((1, 0)), b.fresh(node.input[0] + "_t"))
    w = _weight(b, node.input[1], "weight (B)")
    w = w if at.get("transB", 0) else w.T                      # [O, K]
    w = w * np.float32(at.get("alpha", 1.0))
    out_ch = w.shape[0]
    c_name = node.input[2] if len(node.input) > 2 else ""
    if not c_name or b.is_const(c_name):
        bias = np.zeros(out_ch, np.float32)
        if c_name:
            c = b.const(c_name).astype(np.float32) * np.float32(at.get("beta", 1.0))
            if c.size not in (1, out_ch) or (c.ndim == 2 and c.shape[0] != 1):
                raise _unsupported(b, f"Gemm bias of shape {c.shape} that varies across rows")
            bias = np.broadcast_to(c.reshape(-1), (out_ch,)).astype(np.float32)
        _fc(b, node.output[0], src, w, bias, node.input[1])
        return
    if at.get("beta", 1.0) != 1.0:
        raise _unsupported(b, "Gemm with a non-constant C and beta != 1")
    y = _fc(b, node.output[0], src, w, np.zeros(out_ch, np.float32), node.input[1], final=False)
    b.emit_result(node.output[0], Op.ADD, [y, b.onnx_layout(c_name)], EltwiseAttrs(), nhwc=False)


def matmul(b: Builder, node) -> None:
    a = b.act(node.input[0])
    w = _weight(b, node.input[1], "weight (B)")
    if w.ndim != 2 or a.rank < 2:
        raise _unsupported(b, f"MatMul of {a.shape} by a constant of shape {w.shape}")
    _fc(b, node.output[0], b.onnx_layout(node.input[0]), np.ascontiguousarray(w.T),
        np.zeros(w.shape[1], np.float32), node.input[1])


def batch_norm(b: Builder, node) -> None:
    at = attributes(node)
    scale, beta, mean, var = (b.const(n).astype(np.float64) for n in node.input[1:5])
    mul = scale / np.sqrt(var + at.get("epsilon", 1e-5))
    scale_shift(b, node.input[0], mul, beta - mean * mul, node.output[0])


def scale_shift(b: Builder, src: str, mul: np.ndarray, add: np.ndarray, out: str) -> None:
    """out = src * mul + add, `mul` and `add` per channel (axis 1 of the ONNX value)."""
    a = b.act(src)
    shape = (a.shape[1],) + (1,) * (a.rank - 2)
    b.values[out + "/scale"] = mul.astype(np.float32).reshape(shape)
    b.values[out + "/shift"] = add.astype(np.float32).reshape(shape)
    m = b.emit(Op.MUL, [b.operand(src, a.rank), b.operand(out + "/scale", a.rank)], EltwiseAttrs(),
               b.fresh(out + "_scaled"))
    b.emit_result(out, Op.ADD, [m, b.operand(out + "/shift", a.rank)], EltwiseAttrs(), nhwc=a.rank == 4)


def _pool(b: Builder, node, op: Op) -> None:
    at = attributes(node)
    if len(node.output) > 1 and node.output[1]:
        raise _unsupported(b, "MaxPool with an Indices output")
    x, was_1d = _as_2d(b, node, node.input[0])
    if was_1d:      # [N, C, L] pooled as [N, 1, L, C]
        at = {**at, "kernel_shape": [1, *at["kernel_shape"]], "strides": [1, *at.get("strides", [1])],
              "dilations": [1, *at.get("dilations", [1])]}
        if "pads" in at:
            at["pads"] = [0, at["pads"][0], 0, at["pads"][1]]
    dilation = tuple(at.get("dilations", [1, 1]))
    if dilation != (1, 1) and op is not Op.MAX_POOL:
        raise _unsupported(b, "dilated average pooling")
    _, h, w, _ = b.tensors[x].shape
    kernel = tuple(at["kernel_shape"])
    stride = tuple(at.get("strides", [1, 1]))
    t, l, bo, r = _spatial_pads(b, at, (h, w), kernel, stride, dilation)
    extra = [0, 0]
    if at.get("ceil_mode", 0):
        for i, (n, p0, p1, k, s, d) in enumerate(zip((h, w), (t, l), (bo, r), kernel, stride, dilation)):
            span = (k - 1) * d + 1
            out = -(-(n + p0 + p1 - span) // s) + 1
            if (out - 1) * s >= n + p0:       # the last window must start inside the input
                out -= 1
            extra[i] = max(0, (out - 1) * s + span - (n + p0 + p1))
    if dilation != (1, 1) and kernel != (1, 1):       # (a 1 x 1 window is the same undilated)
        _dilated_max_pool(b, node.output[0], x, kernel, stride, dilation, (t, l, bo + extra[0], r + extra[1]),
                          was_1d)
        return
    if at.get("count_include_pad", 0) and op is Op.AVG_POOL and any((t, l, bo, r)):
        # explicit pads count as zeros (the input's zero point once quantised), the ceil-mode
        # overhang does not: pad first, then average over the in-bounds taps
        x = b.emit(Op.PAD, [x], PadAttrs(((0, 0), (t, bo), (l, r), (0, 0))), b.fresh(node.output[0] + "_pad"))
        t = l = bo = r = 0
    attrs = PoolAttrs(kernel, stride, (t, l, bo + extra[0], r + extra[1]), False)
    _finish_2d(b, node.output[0], op, [x], attrs, was_1d)


def _dilated_max_pool(b: Builder, out: str, x: str, kernel, stride, dilation, pads, was_1d: bool) -> None:
    """A dilated max pool: the largest of its kernel's taps, each a strided slice of the input
    padded with float32's lowest value (masked: the lowest int8 code)."""
    n, h, w, c = b.tensors[x].shape
    t, l, bo, r = pads
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = (h + t + bo - (kh - 1) * dh - 1) // sh + 1, (w + l + r - (kw - 1) * dw - 1) // sw + 1
    if any(pads):
        x = b.emit(Op.PAD, [x], PadAttrs(((0, 0), (t, bo), (l, r), (0, 0)), float(np.finfo(np.float32).min)),
                   b.fresh(out + "_pad"))
    taps = [b.emit(Op.SLICE, [x], SliceAttrs((0, i * dh, j * dw, 0), (n, i * dh + (oh - 1) * sh + 1,
                                                                     j * dw + (ow - 1) * sw + 1, c), (1, sh, sw, 1)),
                   b.fresh(f"{out}_tap{i}_{j}")) for i in range(kh) for j in range(kw)]
    acc = taps[0]
    for tap in taps[1:-1]:
        acc = b.emit(Op.MAXIMUM, [acc, tap], EltwiseAttrs(), b.fresh(out + "_max"))
    _finish_2d(b, out, Op.MAXIMUM, [acc, taps[-1]], EltwiseAttrs(), was_1d)


def max_pool(b: Builder, node) -> None:
    if b.act(node.input[0]).rank == 5:
        pool_frames(b, node, Op.MAX_POOL, lambda b, n: _pool(b, n, Op.MAX_POOL))
        return
    _pool(b, node, Op.MAX_POOL)


def average_pool(b: Builder, node) -> None:
    if b.act(node.input[0]).rank == 5:
        pool_frames(b, node, Op.AVG_POOL, lambda b, n: _pool(b, n, Op.AVG_POOL))
        return
    _pool(b, node, Op.AVG_POOL)


def _global_pool_nd(b: Builder, node, op: Op) -> bool:
    """A global pool of a 3-D (N, C, L) or 5-D input: a reduction over its spatial axes,
    kept, in ONNX layout. False for a 4-D input (pooled in NHWC by the caller)."""
    a = b.act(node.input[0])
    if a.rank == 4:
        return False
    if a.rank < 3:
        raise _unsupported(b, f"a global pool needs an (N, C, spatial...) input, got shape {a.shape}")
    b.emit_result(node.output[0], op, [b.onnx_layout(node.input[0])], MeanAttrs(tuple(range(2, a.rank)), True),
                  nhwc=False)
    return True


def global_average_pool(b: Builder, node) -> None:
    if _global_pool_nd(b, node, Op.MEAN):
        return
    b.emit_result(node.output[0], Op.MEAN, [b.nhwc(node.input[0])], MeanAttrs((1, 2), True), nhwc=True)


def global_max_pool(b: Builder, node) -> None:
    if _global_pool_nd(b, node, Op.REDUCE_MAX):
        return
    x = b.nhwc(node.input[0])
    _, h, w, _ = b.tensors[x].shape
    b.emit_result(node.output[0], Op.MAX_POOL, [x], PoolAttrs((h, w), (1, 1)), nhwc=True)


NN_CONVERTERS = {
    "Conv": conv, "ConvTranspose": conv_transpose, "Gemm": gemm, "MatMul": matmul,
    "BatchNormalization": batch_norm, "MaxPool": max_pool, "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool, "GlobalMaxPool": global_max_pool,
}
