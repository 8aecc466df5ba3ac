"""Window and resampling VPU kernels against LiteRT's reference kernels (BUILTIN_REF):
AVERAGE_POOL_2D, MAX_POOL_2D (SAME/VALID, strides, fused activations), MEAN,
RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (align_corners / half_pixel_centers)."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from npukit.errors import InputError
from npukit.ir.graph import Clamp, PoolAttrs
from npukit.kernels import kernels_vpu as K
from npukit.kernels.kernels_mxu import activation_range
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

SETTINGS = settings(max_examples=25, deadline=None)
scales = st.floats(min_value=-9.0, max_value=1.0).map(lambda e: float(np.float32(2.0 ** e)))
zero_points = st.integers(-128, 127)
seeds = st.integers(0, 2 ** 32 - 1)
ACTS = [(tfl.ActivationFunctionType.NONE, None), (tfl.ActivationFunctionType.RELU, Clamp(0.0, None)),
        (tfl.ActivationFunctionType.RELU6, Clamp(0.0, 6.0))]


def q(name: str, shape, scale, zp, data=None, dtype: str = "int8") -> TensorSpec:
    return TensorSpec(name, tuple(shape), dtype, scale, zp, data=data)


def codes(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def tflite_padding(size: int, kernel: int, stride: int, same: bool) -> tuple[int, int, int]:
    """(output size, pad before, pad after) as TFLite's ComputePaddingHeightWidth derives them."""
    out = (size + stride - 1) // stride if same else (size - kernel + stride) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


@SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 5), kh=st.integers(1, 4),
       kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), same=st.booleans(),
       average=st.booleans(), act=st.sampled_from(ACTS), scale=scales, zp=zero_points, seed=seeds)
def test_pool_matches_litert(h, w, c, kh, kw, sh, sw, same, average, act, scale, zp, seed):
    oh, top, bottom = tflite_padding(h, kh, sh, same)
    ow, left, right = tflite_padding(w, kw, sw, same)
    assume(oh >= 1 and ow >= 1)
    x = codes(np.random.default_rng(seed), (2, h, w, c))
    options = tfl.Pool2DOptionsT()
    options.padding = tfl.Padding.SAME if same else tfl.Padding.VALID
    options.strideH, options.strideW, options.filterHeight, options.filterWidth = sh, sw, kh, kw
    options.fusedActivationFunction = act[0]
    op = "AVERAGE_POOL_2D" if average else "MAX_POOL_2D"
    model = build_single_op(op, [q("x", x.shape, scale, zp)], [q("out", (2, oh, ow, c), scale, zp)], options)
    ref = run_reference(model, [x])[0]
    attrs = PoolAttrs((kh, kw), (sh, sw), (top, left, bottom, right))
    lo, hi = activation_range(act[1], scale, zp)
    got = (K.avg_pool if average else K.max_pool)(x, attrs, lo, hi)
    np.testing.assert_array_equal(got, ref)


def test_avg_pool_hand_worked_rounding():
    """Divide by the in-bounds tap count, rounding half away from zero."""
    x = np.array([1, 2, -1, -2, 3, 4], np.int8).reshape(1, 1, 6, 1)
    got = K.avg_pool(x, PoolAttrs((1, 2), (1, 2)), -128, 127)
    np.testing.assert_array_equal(got.ravel(), [2, -2, 4])   # 1.5 -> 2, -1.5 -> -2, 3.5 -> 4
    edge = K.avg_pool(np.array([[10, 20]], np.int8).reshape(1, 1, 2, 1),
                      PoolAttrs((1, 3), (1, 1), (0, 1, 0, 1)), -128, 127)
    np.testing.assert_array_equal(edge.ravel(), [15, 15])    # padding is not counted
    onnx = K.avg_pool(np.array([[10, 20]], np.int8).reshape(1, 1, 2, 1),
                      PoolAttrs((1, 3), (1, 1), (0, 1, 0, 1), count_include_pad=True), -128, 127)
    np.testing.assert_array_equal(onnx.ravel(), [10, 10])    # 30 / 3 with padding counted


MEAN_CASES = [((2, 5, 7, 3), (1, 2), True), ((2, 5, 7, 3), (2, 1), False), ((1, 9, 9, 4), (1, 2), True),
              ((2, 4, 6, 3), (3,), True), ((2, 4, 6, 3), (1,), False), ((3, 17), (1,), True),
              ((1, 16, 16, 2), (1, 2), True), ((2, 3, 4, 5), (0, 1, 2, 3), False)]


@SETTINGS
@given(case=st.sampled_from(MEAN_CASES), s_in=scales, s_out=scales, z_in=zero_points,
       z_out=zero_points, seed=seeds)
@example(case=MEAN_CASES[0], s_in=0.05, s_out=0.05, z_in=-3, z_out=-3, seed=1)   # same qparams
def test_mean_matches_litert(case, s_in, s_out, z_in, z_out, seed):
    shape, axes, keepdims = case
    x = codes(np.random.default_rng(seed), shape)
    out = np.zeros(shape).sum(axis=axes, keepdims=keepdims).shape
    options = tfl.ReducerOptionsT()
    options.keepDims = keepdims
    axis = TensorSpec("axis", (len(axes),), "int32", data=np.array(axes, np.int32))
    model = build_single_op("MEAN", [q("x", shape, s_in, z_in), axis], [q("out", out, s_out, z_out)], options)
    ref = run_reference(model, [x])[0]
    n = int(np.prod([shape[a] for a in axes]))
    got = K.mean(x, axes, K.prepare_mean(s_in, z_in, s_out, z_out, n), keepdims=keepdims)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


def test_mean_hand_worked():
    x = np.array([1, 2, 3, 5], np.int8).reshape(1, 2, 2, 1)
    got = K.mean(x, (1, 2), K.prepare_mean(1.0, 0, 1.0, 0, 4))
    np.testing.assert_array_equal(got.ravel(), [3])            # 11 / 4 = 2.75 -> 3
    with pytest.raises(InputError, match="prepared for"):
        K.mean(x, (1,), K.prepare_mean(1.0, 0, 1.0, 0, 4))


RESIZE_FLAGS = [(False, False), (True, False), (False, True)]   # (align_corners, half_pixel_centers)


@SETTINGS
@given(h=st.integers(1, 6), w=st.integers(1, 6), oh=st.integers(1, 13), ow=st.integers(1, 13),
       flags=st.sampled_from(RESIZE_FLAGS), bilinear=st.booleans(), scale=scales, zp=zero_points,
       seed=seeds)
@example(h=4, w=5, oh=8, ow=10, flags=(False, True), bilinear=True, scale=0.1, zp=0, seed=2)
def test_resize_matches_litert(h, w, oh, ow, flags, bilinear, scale, zp, seed):
    x = codes(np.random.default_rng(seed), (2, h, w, 3))
    options = tfl.ResizeBilinearOptionsT() if bilinear else tfl.ResizeNearestNeighborOptionsT()
    options.alignCorners, options.halfPixelCenters = flags
    size = TensorSpec("size", (2,), "int32", data=np.array([oh, ow], np.int32))
    op = "RESIZE_BILINEAR" if bilinear else "RESIZE_NEAREST_NEIGHBOR"
    model = build_single_op(op, [q("x", x.shape, scale, zp), size], [q("out", (2, oh, ow, 3), scale, zp)],
                            options)
    ref = run_reference(model, [x])[0]
    got = (K.resize_bilinear if bilinear else K.resize_nearest)(x, (oh, ow), *flags)
    np.testing.assert_array_equal(got, ref)


def test_resize_bilinear_hand_worked():
    """2x upsampling of [0, 100] without flags: output x = 0, 0.5, 1, 1.5 -> 0, 50, 100, 100."""
    x = np.array([0, 100], np.int8).reshape(1, 1, 2, 1)
    np.testing.assert_array_equal(K.resize_bilinear(x, (1, 4)).ravel(), [0, 50, 100, 100])
    np.testing.assert_array_equal(K.resize_nearest(x, (1, 4)).ravel(), [0, 0, 100, 100])
    with pytest.raises(InputError, match="align_corners"):
        K.resize_nearest(x, (1, 4), align_corners=True, half_pixel_centers=True)
