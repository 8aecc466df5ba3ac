"""Window, reduction and resampling int8 kernels of the TFLite reference: MAX_POOL_2D,
AVERAGE_POOL_2D, MEAN, SUM, REDUCE_MAX, REDUCE_MIN, RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR
(pooling and resizing NHWC)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from npukit.errors import InputError
from npukit.ir.graph import PoolAttrs
from npukit.kernels import intmath


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _trunc_div(a, b) -> np.ndarray:
    """C integer division (truncates toward zero); b > 0."""
    a = _i64(a)
    return np.where(a >= 0, a // b, -((-a) // b))


def _check_nhwc(x: np.ndarray, what: str) -> None:
    if np.ndim(x) != 4:
        raise InputError(f"{what} expects an NHWC tensor, got shape {np.shape(x)}")


def pool_output_hw(in_hw: tuple[int, int], attrs: PoolAttrs) -> tuple[int, int]:
    (kh, kw), (sh, sw) = attrs.kernel, attrs.stride
    top, left, bottom, right = attrs.pads
    oh = (in_hw[0] + top + bottom - kh) // sh + 1
    ow = (in_hw[1] + left + right - kw) // sw + 1
    if oh < 1 or ow < 1 or min(kh, kw, sh, sw) < 1:
        raise InputError(f"pool kernel {attrs.kernel} stride {attrs.stride} pads {attrs.pads} "
                         f"leave no output for input {in_hw}")
    return oh, ow


def _windows(x: np.ndarray, attrs: PoolAttrs, fill) -> np.ndarray:
    """[N, OH, OW, C, kh, kw] windows over x padded with `fill` at the top/left pads and
    wherever a window runs past the bottom/right edge (the reference clips those taps)."""
    n, h, w, c = x.shape
    oh, ow = pool_output_hw((h, w), attrs)
    (kh, kw), (sh, sw) = attrs.kernel, attrs.stride
    top, left = attrs.pads[0], attrs.pads[1]
    bottom = max(0, (oh - 1) * sh + kh - top - h)
    right = max(0, (ow - 1) * sw + kw - left - w)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))
    return win[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw]


def max_pool(x: np.ndarray, attrs: PoolAttrs, act_min: int, act_max: int) -> np.ndarray:
    """reference_integer_ops::MaxPool: max over the in-bounds taps, then the activation clamp."""
    x = np.asarray(x)
    _check_nhwc(x, "max_pool")
    m = _windows(x, attrs, np.iinfo(x.dtype).min).max(axis=(-2, -1))
    return np.clip(m, act_min, act_max).astype(x.dtype)


def avg_pool(x: np.ndarray, attrs: PoolAttrs, act_min: int, act_max: int) -> np.ndarray:
    """reference_integer_ops::AveragePool: sum of the in-bounds taps divided by their count,
    rounding half away from zero. count_include_pad=True (ONNX) is npukit's extension: the
    divisor is the full kernel area (windows never extend past the declared padding)."""
    x = np.asarray(x)
    _check_nhwc(x, "avg_pool")
    n, h, w, c = x.shape
    acc = _windows(_i64(x), attrs, 0).sum(axis=(-2, -1))
    if attrs.count_include_pad:   # every window lies inside the padded extent
        count = np.full(acc.shape, attrs.kernel[0] * attrs.kernel[1], dtype=np.int64)
    else:
        count = _windows(np.ones((1, h, w, 1), dtype=np.int64), attrs, 0).sum(axis=(-2, -1))
    if np.any(count == 0):
        raise InputError(f"pool window {attrs.kernel} with pads {attrs.pads} covers no input pixel")
    half = count // 2
    q = np.where(acc > 0, (acc + half) // count, -((-acc + half) // count))
    return np.clip(q, act_min, act_max).astype(x.dtype)


@dataclass(frozen=True)
class MeanParams:
    input_zp: int
    output_zp: int
    n_elements: int
    multiplier: int     # already divided by n_elements, as QuantizedMeanOrSum does
    shift: int          # TFLite convention: > 0 shifts left


def prepare_mean(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                 n_elements: int) -> MeanParams:
    """MEAN Prepare (QuantizeMultiplier(in_s/out_s)) plus QuantizedMeanOrSum's folding of
    1/n into the multiplier: shift up by floor(log2 n) (capped), integer-divide by n."""
    n = int(n_elements)
    if n < 1:
        raise InputError(f"MEAN over {n} elements")
    mult, shift = intmath.quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    up = min(n.bit_length() - 1, 32, 31 + shift)
    if up < 0:
        raise InputError(f"MEAN rescale {in_scale}/{out_scale} is too small to represent")
    mult = (mult << up) // n
    return MeanParams(int(in_zp), int(out_zp), n, int(mult), int(shift - up))


@dataclass(frozen=True)
class SumParams:
    input_zp: int
    output_zp: int
    n_elements: int
    scale_bits: int     # float32(s_in) / float32(s_out) in float32, as its bit pattern


def prepare_sum(in_scale: float, in_zp: int, out_scale: float, out_zp: int, n_elements: int) -> SumParams:
    """SUM as LiteRT's default int8 kernel: out = rint(float32(sum(q) - n zp_in) * (s_in / s_out)
    + zp_out) in float32, ties to even. (LiteRT 2.3.0's BUILTIN_REF int8 SUM reads the codes as
    uint8 bytes and clamps to [0, 255]; npukit does not copy that, see docs/numerics.md.)"""
    n = int(n_elements)
    if n < 1:
        raise InputError(f"SUM over {n} elements")
    scale = np.float32(in_scale) / np.float32(out_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"SUM rescale {in_scale}/{out_scale} is not a positive float32")
    return SumParams(int(in_zp), int(out_zp), n, int(np.asarray(scale, np.float32).view(np.int32)))


def _reduced(x, axes: tuple[int, ...], n_elements: int, what: str) -> tuple[np.ndarray, tuple[int, ...], int]:
    """(x, its reduced axes sorted, the elements each output reduces), checked against the
    element count the params were prepared for."""
    x = np.asarray(x)
    axes = tuple(sorted({a % x.ndim for a in axes}))
    n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    if n != n_elements:
        raise InputError(f"{what} params were prepared for {n_elements} elements, axes {axes} "
                         f"of shape {x.shape} reduce {n}")
    return x, axes, n


def reduce_sum(x: np.ndarray, axes: tuple[int, ...], p: SumParams, keepdims: bool = True) -> np.ndarray:
    x, axes, n = _reduced(x, axes, p.n_elements, "SUM")
    d = _i64(x).sum(axis=axes, keepdims=keepdims) - p.input_zp * n
    scale = np.asarray(p.scale_bits, np.int32).view(np.float32)
    v = np.rint((d.astype(np.float32) * scale + np.float32(p.output_zp)).astype(np.float32))
    return np.clip(v, -128, 127).astype(np.int8)


def reduce_extreme(x: np.ndarray, axes: tuple[int, ...], largest: bool, keepdims: bool = True) -> np.ndarray:
    """REDUCE_MAX / REDUCE_MIN: the largest / smallest code (input and output share quantisation)."""
    x = np.asarray(x)
    axes = tuple(sorted({a % x.ndim for a in axes}))
    return (np.max if largest else np.min)(x, axis=axes, keepdims=keepdims)


def arg_max(x: np.ndarray, axis: int, last: bool = False, keepdims: bool = False,
            dtype=np.int64, smallest: bool = False) -> np.ndarray:
    """ARG_MAX (ARG_MIN when `smallest`): the index of the largest (smallest) code along `axis`,
    the first of equal ones as LiteRT's kernel, or the last; the codes order as the reals do."""
    x = np.asarray(x)
    axis %= x.ndim
    pick = np.argmin if smallest else np.argmax
    if last:
        idx = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis, keepdims=keepdims)
    else:
        idx = pick(x, axis=axis, keepdims=keepdims)
    return idx.astype(dtype)


def mean(x: np.ndarray, axes: tuple[int, ...], p: MeanParams, keepdims: bool = True,
         dtype=np.int8) -> np.ndarray:
    """reference_ops::QuantizedMeanOrSum (compute_sum=false) over `axes`."""
    x, axes, n = _reduced(x, axes, p.n_elements, "MEAN")
    total = intmath.wrap_int32(_i64(x).sum(axis=axes, keepdims=keepdims))
    shifted = intmath.wrap_int32(total - p.input_zp * n)
    out = intmath.multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_zp
    return intmath.saturate(out, dtype)


def _nearest_index(out_size: int, in_size: int, align_corners: bool,
                   half_pixel_centers: bool) -> np.ndarray:
    """GetNearestNeighbor, in float32 like the reference."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    pos = (np.arange(out_size, dtype=np.float32) + offset) * scale
    idx = intmath.round_half_away(pos) if align_corners else np.floor(pos)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    return np.maximum(idx, 0) if half_pixel_centers else idx


def _check_resize(x: np.ndarray, out_hw: tuple[int, int], align_corners: bool,
                  half_pixel_centers: bool) -> None:
    _check_nhwc(x, "resize")
    if min(out_hw) < 1:
        raise InputError(f"resize output size {out_hw} must be positive")
    if align_corners and half_pixel_centers:
        raise InputError("resize: half_pixel_centers and align_corners cannot both be set")


def resize_nearest(x: np.ndarray, out_hw: tuple[int, int], align_corners: bool = False,
                   half_pixel_centers: bool = False, band: Band | None = None) -> np.ndarray:
    """reference_ops::ResizeNearestNeighbor; of a band of rows (`Band`) where given."""
    x = np.asarray(x)
    band = band or Band(0, 0, x.shape[1], out_hw[0])
    _check_resize(x, out_hw, align_corners, half_pixel_centers)
    iy = band.rows(_nearest_index(band.whole_out_h, band.whole_in_h, align_corners, half_pixel_centers), out_hw[0])
    ix = _nearest_index(out_hw[1], x.shape[2], align_corners, half_pixel_centers)
    return x[:, iy][:, :, ix]


@dataclass(frozen=True)
class Band:
    """Output rows row0 .. of a whole_in_h -> whole_out_h resize, read from a tile whose first
    row is the whole input's row in_row0."""
    row0: int
    in_row0: int
    whole_in_h: int
    whole_out_h: int

    def rows(self, index: np.ndarray, out_h: int) -> np.ndarray:
        """A whole output's row index, for the band's out_h rows, as tile rows."""
        return index[self.row0:self.row0 + out_h] - self.in_row0


def resize_band_rows(bilinear: bool, whole_in_h: int, whole_out_h: int, align_corners: bool,
                     half_pixel_centers: bool, row0: int, row1: int) -> tuple[int, int]:
    """The whole input's rows [lo, hi) that output rows row0 .. row1 read."""
    if bilinear:
        lower, upper, _, _ = _bilinear_axis(whole_out_h, whole_in_h, align_corners, half_pixel_centers)
        return int(lower[row0:row1].min()), int(upper[row0:row1].max()) + 1
    idx = _nearest_index(whole_out_h, whole_in_h, align_corners, half_pixel_centers)[row0:row1]
    return int(idx.min()), int(idx.max()) + 1


def _bilinear_axis(out_size: int, in_size: int, align_corners: bool,
                   half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ComputeInterpolationValuesInteger on one axis: (lower, upper, w_lower, w_upper) in Q10."""
    if align_corners and out_size > 1:
        scale_10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale_10 = ((1 << 10) * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64) * scale_10
    if half_pixel_centers:
        v = v + scale_10 // 2 - (1 << 9)
    lower = np.maximum(_trunc_div(v, 1 << 10), 0)
    upper = np.minimum(_trunc_div(v + (1 << 10) - 1, 1 << 10), in_size - 1)
    frac = v - (1 << 10) * lower
    return lower, upper, (1 << 10) - frac, frac


def resize_bilinear(x: np.ndarray, out_hw: tuple[int, int], align_corners: bool = False,
                    half_pixel_centers: bool = False, band: Band | None = None) -> np.ndarray:
    """reference_ops::ResizeBilinearInteger (10-bit fixed-point weights, int8 in and out); of a
    band of rows (`Band`) where given."""
    x = np.asarray(x)
    band = band or Band(0, 0, x.shape[1], out_hw[0])
    _check_resize(x, out_hw, align_corners, half_pixel_centers)
    y0, y1, wy0, wy1 = _bilinear_axis(band.whole_out_h, band.whole_in_h, align_corners, half_pixel_centers)
    rows = slice(band.row0, band.row0 + out_hw[0])
    y0, y1, wy0, wy1 = y0[rows] - band.in_row0, y1[rows] - band.in_row0, wy0[rows], wy1[rows]
    x0, x1, wx0, wx1 = _bilinear_axis(out_hw[1], x.shape[2], align_corners, half_pixel_centers)
    v = _i64(x)
    wy0, wy1 = wy0[None, :, None, None], wy1[None, :, None, None]
    wx0, wx1 = wx0[None, None, :, None], wx1[None, None, :, None]
    acc = (v[:, y0][:, :, x0] * wy0 * wx0 + v[:, y1][:, :, x0] * wy1 * wx0
           + v[:, y0][:, :, x1] * wy0 * wx1 + v[:, y1][:, :, x1] * wy1 * wx1)
    rounded = _trunc_div(acc + np.where(acc > 0, 1 << 19, -(1 << 19)), 1 << 20)
    info = np.iinfo(x.dtype)
    span = int(info.max) - int(info.min) + 1
    return ((rounded - info.min) % span + info.min).astype(x.dtype)   # static_cast<T> wraps
