"""A conv / fully connected layer's float weights as TFLite's int8 scheme stores them:
symmetric int8 per output channel, the bias at input x weight scale (int32; int64 for an
int16 input, 16x8), each channel's scale raised only as far as its multiplier and bias code
need (`weight_scale_floor`).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, QParams, Tensor
from ..kernels import kernels_mxu as kx


def weights_per_channel(w: np.ndarray, axis: int, floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel along `axis`; `floor`: each channel's least scale."""
    red = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.maximum(np.max(w, axis=red), -np.min(w, axis=red))     # max |w|, without an |w| array
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    if floor is not None:
        scales = np.maximum(scales, floor.astype(np.float32))
    shape = [1] * w.ndim
    shape[axis] = -1
    q = w / scales.reshape(shape)
    np.round(q, out=q)      # (in place: one temporary the size of the weights instead of three)
    np.clip(q, -127, 127, out=q)
    return q.astype(np.int8), scales


def float_conv(w: np.ndarray, axis: int, bias_f: np.ndarray | None, b64: bool, x: QParams, out: QParams, act,
                wide_out) -> tuple:
    """A conv / fully connected layer's float weights as int8 per output channel (and their
    QParams), its bias as int32 (int64 for an int16 input: TFLite's 16x8 scheme) at input x
    weight scale (None without one), and its params."""
    wq, ws = weights_per_channel(w, axis, weight_scale_floor(w.shape[axis], bias_f, b64, x.s, out.s))
    # int64 (16x8): acc + bias stays below 2^47, the int64 output stage's bound (int16 input
    # steps are 256x finer than int8's: a channel of tiny weights has a bias code past 2^31)
    bound = 2 ** 46 if b64 else 2 ** 31
    k = ws.size
    bias = None
    if bias_f is not None:
        bscale = np.float64(np.float32(x.s)) * ws.astype(np.float64)
        bq = np.clip(np.round(bias_f / bscale), -bound, bound - 1).astype(np.int64 if b64 else np.int32)
        bias = Tensor("", (k,), DType.I64 if b64 else DType.I32, bq, QParams(tuple(map(float, bscale)), (0,) * k, 0))
    return (wq, QParams(tuple(map(float, ws)), (0,) * len(ws), axis), bias,
            kx.prepare_conv(x.s, ws, out.s, x.zp, out.zp, act, wide_out))


def weight_scale_floor(k: int, bias_f: np.ndarray | None, b64: bool, in_s: float, out_s: float) -> np.ndarray:
    """Each of a layer's `k` output channels' least weight scale, for a channel of near-zero
    weights that would otherwise lose its output: its multiplier in_s x w_s / out_s under
    2^-31 (quantize_multiplier flushes one under 2^-32 to 0, as LiteRT does: the channel then
    outputs its zero point, not its bias), or its bias code past 2^46 (int64, 16x8) / 2^30
    (int32: acc + bias stays within int32), which would be clipped (a class never predicted:
    weights ~1e-5 beside a bias of -13.7). As TFLite's converter raises a weight scale so that
    the bias fits (AdjustWeightsForBiasScale); every other channel keeps max |w| / 127."""
    floor = np.full(k, 2.0 ** -31 * float(out_s) / float(in_s))
    if bias_f is not None and np.size(bias_f) == k:
        b = np.abs(np.asarray(bias_f, np.float64).ravel())
        b[~np.isfinite(b)] = 0.0        # (a non-finite bias is clipped below, as before)
        floor = np.maximum(floor, b / (float(in_s) * 2.0 ** (46 if b64 else 30)))
    return floor * (1 + 2 ** -20)       # above the bound after float32 rounding
