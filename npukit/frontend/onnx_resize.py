"""ONNX Resize / Upsample -> IR RESIZE (TFLite semantics), only where the results are identical.

Nearest: the ONNX source-index map of each spatial axis is computed and matched against the
three TFLite variants; a map none of them reproduces is rejected. Linear: coordinate modes
map one to one (half_pixel -> half_pixel_centers, align_corners, asymmetric).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import Op, ResizeAttrs
from .onnx_builder import Builder
from .onnx_const import attributes

_TFLITE_VARIANTS = ((False, False), (True, False), (False, True))   # (align_corners, half_pixel)


def _onnx_nearest_index(out_len: int, in_len: int, scale: float, mode: str, rounding: str) -> np.ndarray:
    i = np.arange(out_len, dtype=np.float64)
    if mode == "half_pixel":
        x = (i + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = (i + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(i)
    elif mode == "align_corners":
        x = i * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros_like(i)
    elif mode == "asymmetric":
        x = i / scale
    elif mode == "tf_half_pixel_for_nn":
        x = (i + 0.5) / scale
    else:
        raise ValueError(mode)
    if rounding == "round_prefer_floor":
        idx = np.ceil(x - 0.5)
    elif rounding == "round_prefer_ceil":
        idx = np.floor(x + 0.5)
    elif rounding == "floor":
        idx = np.floor(x)
    else:
        idx = np.ceil(x)
    return np.clip(idx, 0, in_len - 1).astype(np.int64)


def _tflite_nearest_index(out_len: int, in_len: int, align: bool, half: bool) -> np.ndarray:
    scale = (np.float32(in_len - 1) / np.float32(out_len - 1) if align and out_len > 1
             else np.float32(in_len) / np.float32(out_len))
    src = (np.arange(out_len, dtype=np.float32) + np.float32(0.5 if half else 0.0)) * scale
    src = np.floor(src + np.float32(0.5)) if align else np.floor(src)
    return np.clip(src.astype(np.int64), 0, in_len - 1)


def _emit(b: Builder, node, size: tuple[int, int], scales: tuple[float, float], mode: str,
          coord: str, rounding: str) -> None:
    x = b.nhwc(node.input[0])
    in_hw = b.tensors[x].shape[1:3]
    where = f"(node '{b.source[-1]}')"
    if mode == "nearest":
        for align, half in _TFLITE_VARIANTS:
            if all(np.array_equal(_onnx_nearest_index(o, n, s, coord, rounding),
                                  _tflite_nearest_index(o, n, align, half))
                   for o, n, s in zip(size, in_hw, scales)):
                attrs = ResizeAttrs(size, "nearest", align, half)
                b.emit_result(node.output[0], Op.RESIZE, [x], attrs, nhwc=True)
                return
        raise UnsupportedOpError(f"unsupported ONNX operator 'Resize' nearest with "
                                 f"{coord}/{rounding} at this size {where}")
    if mode not in ("linear", "bilinear"):
        raise UnsupportedOpError(f"unsupported ONNX operator 'Resize' mode '{mode}' {where}")
    if coord in ("half_pixel", "pytorch_half_pixel") and min(size) > 1:
        align, half = False, True
    elif coord == "align_corners":
        align, half = True, False
    elif coord == "asymmetric":
        align, half = False, False
    else:
        raise UnsupportedOpError(f"unsupported ONNX operator 'Resize' linear with {coord} {where}")
    if not align and any(abs(o / n - s) > 1e-6 * s for o, n, s in zip(size, in_hw, scales)):
        raise UnsupportedOpError(f"unsupported ONNX operator 'Resize' linear with a scale that "
                                 f"differs from output/input size {where}")
    b.emit_result(node.output[0], Op.RESIZE, [x], ResizeAttrs(size, "bilinear", align, half), nhwc=True)


def _sizes_and_scales(b: Builder, node, scales: np.ndarray | None, sizes: np.ndarray | None):
    a = b.act(node.input[0])
    if a.rank != 4:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: only 4-D Resize is supported")
    if sizes is not None and sizes.size:
        size = tuple(int(s) for s in sizes.ravel()[-2:])
        if tuple(int(s) for s in sizes.ravel()[:2]) != a.shape[:2]:
            raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: Resize of batch or channels")
        return size, tuple(o / n for o, n in zip(size, a.shape[2:]))
    if scales is None or scales.size != 4 or not np.isfinite(scales).all() or (scales <= 0).any():
        raise ModelError(f"ONNX node {b.source[-1]!r}: Resize needs 4 positive finite scales or 4 sizes")
    sc = [float(s) for s in scales.ravel()]
    if sc[0] != 1 or sc[1] != 1:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: Resize of batch or channels")
    size = tuple(int(math.floor(n * s)) for n, s in zip(a.shape[2:], sc[2:]))
    return size, tuple(sc[2:])


def resize(b: Builder, node) -> None:
    at = attributes(node)
    if at.get("antialias", 0) or at.get("axes") or at.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise UnsupportedOpError(f"unsupported ONNX operator 'Resize' options (node '{b.source[-1]}')")
    if b.opset < 11:
        scales, sizes = b.opt_const(node, 1), None
    else:
        scales, sizes = b.opt_const(node, 2), b.opt_const(node, 3)
    size, sc = _sizes_and_scales(b, node, scales, sizes)
    coord = at.get("coordinate_transformation_mode", "half_pixel" if b.opset >= 11 else "asymmetric")
    rounding = at.get("nearest_mode", "round_prefer_floor" if b.opset >= 11 else "floor")
    if b.opset < 11:
        rounding = _simple_rounding(sc)
    _emit(b, node, size, sc, at.get("mode", "nearest"), coord, rounding)


def _simple_rounding(scales) -> str:
    """Resize-10 / Upsample nearest: truncate when upsampling, ceil when downsampling."""
    return "ceil" if any(s < 1 for s in scales) else "floor"


def upsample(b: Builder, node) -> None:
    at = attributes(node)
    scales = np.array(at["scales"], np.float32) if "scales" in at else b.const(node.input[1])
    size, sc = _sizes_and_scales(b, node, scales, None)
    _emit(b, node, size, sc, at.get("mode", "nearest"), "asymmetric", _simple_rounding(sc))


RESIZE_CONVERTERS = {"Resize": resize, "Upsample": upsample}
