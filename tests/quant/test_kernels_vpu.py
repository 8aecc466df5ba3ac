"""Element-wise VPU kernels against LiteRT's reference kernels (BUILTIN_REF), element for element:
ADD, SUB, MUL (broadcasting, fused RELU/RELU6), MAXIMUM, MINIMUM, PRELU, QUANTIZE, DEQUANTIZE."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from npukit.errors import InputError
from npukit.ir.graph import Clamp
from npukit.kernels import kernels_vpu as K
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

SETTINGS = settings(max_examples=25, deadline=None)
scales = st.floats(min_value=-9.0, max_value=1.0).map(lambda e: float(np.float32(2.0 ** e)))
zero_points = st.integers(-128, 127)
seeds = st.integers(0, 2 ** 32 - 1)

# (input1 shape, input2 shape): equal, channel vector, both sides broadcasting, scalar
SHAPE_PAIRS = [((1, 4, 4, 8), (1, 4, 4, 8)), ((1, 4, 4, 8), (8,)), ((2, 3, 1, 5), (1, 1, 4, 5)),
               ((1, 1, 1, 1), (2, 3, 4, 5)), ((3, 5), (3, 5))]
ACTS = [(tfl.ActivationFunctionType.NONE, None), (tfl.ActivationFunctionType.RELU, Clamp(0.0, None)),
        (tfl.ActivationFunctionType.RELU6, Clamp(0.0, 6.0))]


def q(name: str, shape, scale, zp, data=None, dtype: str = "int8") -> TensorSpec:
    return TensorSpec(name, tuple(shape), dtype, scale, zp, data=data)


def codes(rng: np.random.Generator, shape, dtype=np.int8) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)


def run_binary(op: str, options, x1, x2, qp1, qp2, qpo) -> np.ndarray:
    out_shape = np.broadcast_shapes(x1.shape, x2.shape)
    model = build_single_op(op, [q("a", x1.shape, *qp1), q("b", x2.shape, *qp2)],
                            [q("out", out_shape, *qpo)], options)
    return run_reference(model, [x1, x2])[0]


@SETTINGS
@given(s1=scales, s2=scales, so=scales, z1=zero_points, z2=zero_points, zo=zero_points,
       pair=st.sampled_from(SHAPE_PAIRS), act=st.sampled_from(ACTS), swap=st.booleans(),
       subtract=st.booleans(), seed=seeds)
def test_add_sub_match_litert(s1, s2, so, z1, z2, zo, pair, act, swap, subtract, seed):
    rng = np.random.default_rng(seed)
    shape1, shape2 = pair[::-1] if swap else pair
    x1, x2 = codes(rng, shape1), codes(rng, shape2)
    options = tfl.SubOptionsT() if subtract else tfl.AddOptionsT()
    options.fusedActivationFunction = act[0]
    ref = run_binary("SUB" if subtract else "ADD", options, x1, x2, (s1, z1), (s2, z2), (so, zo))
    p = K.prepare_add(s1, z1, s2, z2, so, zo, act[1], sub=subtract)
    got = K.sub(x1, x2, p) if subtract else K.add(x1, x2, p)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(s1=scales, s2=scales, so=scales, z1=zero_points, z2=zero_points, zo=zero_points,
       pair=st.sampled_from(SHAPE_PAIRS), act=st.sampled_from(ACTS), seed=seeds)
def test_mul_matches_litert(s1, s2, so, z1, z2, zo, pair, act, seed):
    rng = np.random.default_rng(seed)
    x1, x2 = codes(rng, pair[0]), codes(rng, pair[1])
    options = tfl.MulOptionsT()
    options.fusedActivationFunction = act[0]
    ref = run_binary("MUL", options, x1, x2, (s1, z1), (s2, z2), (so, zo))
    got = K.mul(x1, x2, K.prepare_mul(s1, z1, s2, z2, so, zo, act[1]))
    np.testing.assert_array_equal(got, ref)


def test_mul_all_code_pairs():
    """Every (code, code) pair once, at a scale where the product often lands on .5 ties."""
    x1 = np.repeat(np.arange(-128, 128), 256).astype(np.int8).reshape(1, 256, 256)
    x2 = np.tile(np.arange(-128, 128), 256).astype(np.int8).reshape(1, 256, 256)
    for s1, z1, s2, z2, so, zo in [(0.5, 3, 0.25, -7, 4.0, 1), (0.0123, -20, 0.0456, 100, 0.0789, -5)]:
        ref = run_binary("MUL", tfl.MulOptionsT(), x1, x2, (s1, z1), (s2, z2), (so, zo))
        got = K.mul(x1, x2, K.prepare_mul(s1, z1, s2, z2, so, zo, None))
        np.testing.assert_array_equal(got, ref)


def test_add_hand_worked():
    """Same scales, zero zero points: ADD is exact integer addition with saturation."""
    p = K.prepare_add(0.5, 0, 0.5, 0, 0.5, 0, None)
    got = K.add(np.array([1, -3, 100, -100], np.int8), np.array([2, 1, 100, -100], np.int8), p)
    np.testing.assert_array_equal(got, [3, -2, 127, -128])
    ps = K.prepare_add(0.5, 0, 0.5, 0, 0.5, 0, None, sub=True)
    np.testing.assert_array_equal(K.sub(np.array([5, -128], np.int8), np.array([7, 127], np.int8), ps),
                                  [-2, -128])


@SETTINGS
@given(scale=scales, zp=zero_points, pair=st.sampled_from(SHAPE_PAIRS), use_max=st.booleans(),
       seed=seeds)
def test_maximum_minimum_match_litert(scale, zp, pair, use_max, seed):
    rng = np.random.default_rng(seed)
    x1, x2 = codes(rng, pair[0]), codes(rng, pair[1])
    op = "MAXIMUM" if use_max else "MINIMUM"
    ref = run_binary(op, tfl.MaximumMinimumOptionsT(), x1, x2, (scale, zp), (scale, zp), (scale, zp))
    got = (K.maximum if use_max else K.minimum)(x1, x2)
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(s_in=scales, s_alpha=scales, s_out=scales, z_in=zero_points, z_alpha=zero_points,
       z_out=zero_points, alpha_shape=st.sampled_from([(6,), (1, 1, 6), (1, 5, 1, 6), (1, 1, 1, 1)]),
       seed=seeds)
def test_prelu_matches_litert(s_in, s_alpha, s_out, z_in, z_alpha, z_out, alpha_shape, seed):
    rng = np.random.default_rng(seed)
    x = codes(rng, (2, 5, 4, 6))
    alpha = codes(rng, alpha_shape)
    inputs = [q("x", x.shape, s_in, z_in), q("alpha", alpha.shape, s_alpha, z_alpha, alpha)]
    model = build_single_op("PRELU", inputs, [q("out", x.shape, s_out, z_out)])
    ref = run_reference(model, [x])[0]
    got = K.prelu(x, alpha, K.prepare_prelu(s_in, z_in, s_alpha, z_alpha, s_out, z_out))
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(s_in=scales, s_out=scales, z_in=zero_points, z_out=st.integers(-128, 255),
       to_uint8=st.booleans())
@example(s_in=0.1, s_out=0.1, z_in=-5, z_out=123, to_uint8=True)   # same scale: the XOR fast path
def test_requantize_all_codes_matches_litert(s_in, s_out, z_in, z_out, to_uint8):
    """QUANTIZE int8 -> int8 / uint8 rescale, on all 256 input codes."""
    out_dtype = np.uint8 if to_uint8 else np.int8
    z_out = z_out if to_uint8 else min(z_out, 127)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    model = build_single_op("QUANTIZE", [q("x", x.shape, s_in, z_in)],
                            [q("out", x.shape, s_out, z_out, dtype=np.dtype(out_dtype).name)])
    ref = run_reference(model, [x])[0]
    got = K.requantize(x, K.prepare_requantize(s_in, z_in, s_out, z_out), out_dtype)
    assert got.dtype == out_dtype
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(scale=scales, zp=zero_points, seed=seeds)
def test_quantize_float_matches_litert(scale, zp, seed):
    """QUANTIZE float32 -> int8, including exact .5 ties and out-of-range values."""
    rng = np.random.default_rng(seed)
    f32_scale = np.float32(scale)
    ties = (rng.integers(-140, 140, 64) + 0.5).astype(np.float32) * f32_scale
    wide = rng.normal(0.0, 100.0 * float(scale), 64).astype(np.float32)
    x = np.concatenate([ties, wide, np.float32([0.0, -0.0, 1e30, -1e30])]).reshape(1, -1)
    model = build_single_op("QUANTIZE", [TensorSpec("x", x.shape, "float32")], [q("out", x.shape, scale, zp)])
    ref = run_reference(model, [x])[0]
    np.testing.assert_array_equal(K.quantize(x, scale, zp), ref)


@SETTINGS
@given(scale=scales, zp=zero_points)
def test_dequantize_all_codes_matches_litert(scale, zp):
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    model = build_single_op("DEQUANTIZE", [q("x", x.shape, scale, zp)],
                            [TensorSpec("out", x.shape, "float32")])
    ref = run_reference(model, [x])[0]
    got = K.dequantize(x, scale, zp)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)


@SETTINGS
@given(scale=scales, zp=zero_points, seed=seeds)
def test_quantize_in_range_matches_litert(scale, zp, seed):
    """The in-range path (no value near int32's limits): ties and the float32 values on
    either side of them."""
    rng = np.random.default_rng(seed)
    f32_scale = np.float32(scale)
    ties = (rng.integers(-140, 140, 64) + 0.5).astype(np.float32) * f32_scale
    near = np.concatenate([np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    x = np.concatenate([ties, near, rng.normal(0.0, 100.0 * float(scale), 64).astype(np.float32),
                        np.float32([0.0, -0.0, 1e-38, -1e-38])]).reshape(1, -1)
    model = build_single_op("QUANTIZE", [TensorSpec("x", x.shape, "float32")], [q("out", x.shape, scale, zp)])
    np.testing.assert_array_equal(K.quantize(x, scale, zp), run_reference(model, [x])[0])


def test_quantize_rounds_half_away_from_zero():
    got = K.quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32), 1.0, 0)
    np.testing.assert_array_equal(got, [1, 2, 3, -1, -2, -3])


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(InputError, match="scale"):
        K.prepare_add(0.0, 0, 1.0, 0, 1.0, 0, None)
    with pytest.raises(InputError, match="zero point"):
        K.prepare_add(1.0, 300, 1.0, 0, 1.0, 0, None)
    with pytest.raises(InputError, match="broadcast"):
        K.prelu(np.zeros((1, 2, 2, 3), np.int8), np.zeros((1, 4, 4, 3), np.int8),
                K.prepare_prelu(1.0, 0, 1.0, 0, 1.0, 0))
