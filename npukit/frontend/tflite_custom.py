"""TFLite CUSTOM operators that are plain layers, lowered like the builtins they stand for.

MediaPipe's `Convolution2DTransposeBias` (mediapipe/util/tflite/operations/
transpose_conv_bias.cc) is a float transposed convolution with bias. Its custom options are
the raw bytes of TfLiteTransposeConvParams: int32 padding (TfLitePadding: 0 unknown, 1 SAME,
2 VALID), stride_width, stride_height (newer structs append fields the kernel ignores).
Inputs: input NHWC, weights [O, kh, kw, I], bias [O]. Per axis the kernel pads
P = max(0, k - 1 - (in - 1) % s) for SAME (0 otherwise), outputs s*(in-1) + k - P pixels and
crops P // 2 of them before: output pixel y is pixel y + P // 2 of the full scatter.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import Op
from ..kernels import kernels_mxu as kx
from .tflite_ops import converter

_SAME, _PADDINGS = 1, (0, 1, 2)


def _params(cv, op) -> tuple[bool, tuple[int, int]]:
    """(SAME?, (stride_h, stride_w)) from the TfLiteTransposeConvParams bytes."""
    raw = bytes(np.asarray(op.customOptions if op.customOptions is not None else [], np.uint8))
    if len(raw) < 12:
        raise ModelError(f"{cv.where()}: custom options hold {len(raw)} bytes, "
                         f"TfLiteTransposeConvParams needs 12")
    padding, stride_w, stride_h = (int(v) for v in np.frombuffer(raw[:12], "<i4"))
    if padding not in _PADDINGS or stride_w < 1 or stride_h < 1:
        raise ModelError(f"{cv.where()}: bad options (padding {padding}, strides {stride_h}x{stride_w})")
    return padding == _SAME, (stride_h, stride_w)


def mediapipe_transpose_geometry(in_hw, kernel_hw, stride, same: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """(output size, crop) per spatial axis, as MediaPipe's kernel computes them."""
    pad = [max(0, k - 1 - (i - 1) % s) if same else 0 for i, k, s in zip(in_hw, kernel_hw, stride)]
    (oh, ow) = (s * (i - 1) + k - p for i, k, s, p in zip(in_hw, kernel_hw, stride, pad))
    return (oh, ow), (pad[0] // 2, pad[1] // 2)


@converter("CUSTOM:Convolution2DTransposeBias")
def convolution_2d_transpose_bias(cv, op) -> None:
    if cv.quantised:
        raise UnsupportedOpError(f"{cv.where()}: MediaPipe's kernel is float32 only; this model is int8")
    ins = [int(i) for i in op.inputs]
    if len(ins) != 3 or min(ins) < 0 or len(op.outputs) != 1:
        raise ModelError(f"{cv.where()}: expects input, weights and bias, and one output")
    same, stride = _params(cv, op)
    w, b = (cv.need_const(i, f"Convolution2DTransposeBias {what}") for i, what in zip(ins[1:], ("weights", "bias")))
    x, out = cv.name(ins[0]), cv.name(op.outputs[0])
    xs, want = cv.shape(ins[0]), cv.tensors[out].shape
    if len(xs) != 4 or w.ndim != 4 or b.shape != (w.shape[0],) or w.shape[3] != xs[3]:
        raise ModelError(f"{cv.where()}: input {list(xs)}, weights {list(w.shape)} and bias "
                         f"{list(b.shape)} do not fit (weights are [O, kh, kw, I], bias [O])")
    out_hw, crop = mediapipe_transpose_geometry(xs[1:3], w.shape[1:3], stride, same)
    if want != (xs[0], *out_hw, w.shape[0]):
        raise ModelError(f"{cv.where()}: output {list(want)} in the model, the kernel makes "
                         f"{[xs[0], *out_hw, w.shape[0]]}")
    wn = cv.name(ins[1])
    flipped = cv.fresh(f"{wn}/flipped", w.shape, wn, np.ascontiguousarray(w[:, ::-1, ::-1, :]))
    attrs = kx.cropped_transpose_conv_attrs(xs[1:3], out_hw, w.shape[1:3], stride, crop)
    cv.emit(Op.CONV2D, [x, flipped, cv.name(ins[2])], out, attrs)
