"""Activation VPU kernels against LiteRT's reference kernels (BUILTIN_REF): LOGISTIC, TANH,
HARD_SWISH, LEAKY_RELU on all 256 codes, and SOFTMAX; plus the gemmlowp fixed-point helpers
against closed-form values."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from npukit.errors import UnsupportedOpError
from npukit.kernels import fixedpoint as fp
from npukit.kernels import kernels_vpu as K
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_default, run_reference

SETTINGS = settings(max_examples=30, deadline=None)
scales = st.floats(min_value=-9.0, max_value=1.0).map(lambda e: float(np.float32(2.0 ** e)))
zero_points = st.integers(-128, 127)
ALL_CODES = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def q(name: str, shape, scale, zp) -> TensorSpec:
    return TensorSpec(name, tuple(shape), "int8", scale, zp)


def reference_table(op: str, s_in, z_in, s_out, z_out, options=None) -> np.ndarray:
    """The op's output on every int8 code, i.e. its table in code + 128 order."""
    model = build_single_op(op, [q("x", ALL_CODES.shape, s_in, z_in)],
                            [q("out", ALL_CODES.shape, s_out, z_out)], options)
    return run_reference(model, [ALL_CODES])[0].ravel()


@SETTINGS
@given(s_in=scales, z_in=zero_points)
def test_logistic_table_matches_litert(s_in, z_in):
    table = K.logistic_table(s_in, z_in)
    np.testing.assert_array_equal(table, reference_table("LOGISTIC", s_in, z_in, 1 / 256, -128))
    np.testing.assert_array_equal(K.lut(ALL_CODES, table), table.reshape(1, 256))


@SETTINGS
@given(s_in=scales, z_in=zero_points, s_out=st.one_of(st.just(1 / 128), scales), z_out=zero_points)
def test_tanh_table_matches_litert(s_in, z_in, s_out, z_out):
    table = K.tanh_table(s_in, z_in, s_out, z_out)
    np.testing.assert_array_equal(table, reference_table("TANH", s_in, z_in, s_out, z_out))


@SETTINGS
@given(s_in=scales, z_in=zero_points, ratio=st.floats(-6.9, 3.0), z_out=zero_points)
def test_hard_swish_table_matches_litert(s_in, z_in, ratio, z_out):
    s_out = float(np.float32(s_in * 2.0 ** ratio))     # HARD_SWISH needs s_in / s_out <= 128
    table = K.hard_swish_table(s_in, z_in, s_out, z_out)
    np.testing.assert_array_equal(table, reference_table("HARD_SWISH", s_in, z_in, s_out, z_out))


@SETTINGS
@given(s_in=scales, z_in=zero_points, s_out=scales, z_out=zero_points,
       alpha=st.one_of(st.floats(0.001, 0.999), st.floats(1.0, 4.0), st.floats(-3.0, -0.001),
                       st.sampled_from([0.1, 0.2, 0.01])))
def test_leaky_relu_table_matches_litert(s_in, z_in, s_out, z_out, alpha):
    options = tfl.LeakyReluOptionsT()
    options.alpha = alpha
    table = K.leaky_relu_table(s_in, z_in, s_out, z_out, alpha)
    np.testing.assert_array_equal(table, reference_table("LEAKY_RELU", s_in, z_in, s_out, z_out, options))


SOFTMAX_SHAPES = [(1, 10), (4, 1000), (2, 3, 7), (1, 2, 2, 33), (5, 1), (3, 256)]


@SETTINGS
@given(shape=st.sampled_from(SOFTMAX_SHAPES),
       s_in=st.floats(-8.0, 0.0).map(lambda e: float(np.float32(2.0 ** e))),
       z_in=zero_points, beta=st.one_of(st.just(1.0), st.floats(0.1, 4.0)), spread=st.integers(1, 255),
       seed=st.integers(0, 2 ** 32 - 1))
def test_softmax_matches_litert(shape, s_in, z_in, beta, spread, seed):
    rng = np.random.default_rng(seed)
    x = np.clip(rng.integers(-spread, spread + 1, size=shape) + rng.integers(-128, 128), -128, 127)
    x = x.astype(np.int8)
    # LiteRT aborts (TFLITE_CHECK on the output shift) once a row's sum of exps reaches 256.
    real_diff = float(np.float32(beta)) * s_in * (x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    assume(np.exp(real_diff).sum(axis=-1).max() < 200.0)
    options = tfl.SoftmaxOptionsT()
    options.beta = beta
    model = build_single_op("SOFTMAX", [q("x", shape, s_in, z_in)], [q("out", shape, 1 / 256, -128)], options)
    ref = run_reference(model, [x])[0]
    got = K.softmax(x, K.prepare_softmax(s_in, beta))
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, ref)


# beta * input scale <= 2^-26: LiteRT's reference SoftmaxPrepare aborts (QuantizeMultiplierGreaterThanOne)
TINY_SOFTMAX_SHAPES = [(1, 10), (3, 512), (2, 3, 7), (4, 1000), (5, 1), (2, 256), (1, 2, 2, 33)]


@SETTINGS
@given(shape=st.sampled_from(TINY_SOFTMAX_SHAPES),
       s_in=st.floats(-60.0, -26.0).map(lambda e: float(np.float32(2.0 ** e))),
       z_in=zero_points, beta=st.one_of(st.just(1.0), st.floats(0.05, 1.0)),
       seed=st.integers(0, 2 ** 32 - 1))
def test_softmax_below_reference_scale_matches_litert_default(shape, s_in, z_in, beta, seed):
    assume(float(np.float32(beta)) * s_in * 2.0 ** 26 <= 1.0)
    x = np.random.default_rng(seed).integers(-128, 128, size=shape).astype(np.int8)
    options = tfl.SoftmaxOptionsT()
    options.beta = beta
    model = build_single_op("SOFTMAX", [q("x", shape, s_in, z_in)], [q("out", shape, 1 / 256, -128)], options)
    params = K.prepare_softmax(s_in, beta)
    assert isinstance(params, K.SoftmaxTableParams)
    got = K.softmax(x, params)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, run_default(model, [x])[0])


def test_softmax_below_reference_scale_hand_worked():
    """512 logits 122 codes of 2^-40 apart: every exp rounds to 1.0f, the sum is 512 and each
    probability is exactly 0.5 of an output step; std::round takes the tie away from zero,
    code -127 (half-to-even would give -128)."""
    x = np.array([[5] * 511 + [127]], np.int8)
    np.testing.assert_array_equal(K.softmax(x, K.prepare_softmax(2.0 ** -40)), np.full((1, 512), -127))
    np.testing.assert_array_equal(K.softmax(np.zeros((1, 4), np.int8), K.prepare_softmax(1e-12)), [[-64] * 4])


def test_softmax_hand_worked():
    """Equal logits share probability evenly: 1/4 is code 64 - 128 = -64."""
    got = K.softmax(np.full((1, 4), 17, np.int8), K.prepare_softmax(0.1))
    np.testing.assert_array_equal(got, [[-64, -64, -64, -64]])
    one_hot = K.softmax(np.array([[127, -128, -128]], np.int8), K.prepare_softmax(1.0))
    np.testing.assert_array_equal(one_hot, [[127, -128, -128]])


def test_exp_on_negative_values_close_to_exp():
    """Q5.26 input: the polynomial + barrel-shifter exp is accurate to about 2^-22."""
    x = -np.linspace(0.0, 31.9, 2001)
    raw = np.round(x * 2 ** 26).astype(np.int64)
    got = fp.exp_on_negative_values(raw, 5) / 2.0 ** 31
    np.testing.assert_allclose(got, np.exp(raw / 2.0 ** 26), atol=2.5e-7)


def test_one_over_one_plus_x_close_to_reciprocal():
    x = np.linspace(0.0, 0.999, 999)
    raw = np.round(x * 2 ** 31).astype(np.int64)
    got = fp.one_over_one_plus_x_for_x_in_0_1(raw) / 2.0 ** 31
    np.testing.assert_allclose(got, 1.0 / (1.0 + raw / 2.0 ** 31), atol=4e-9)


def test_float_function_table_is_round_half_away():
    table = K.float_function_table(lambda v: v * 0.5, 1.0, 0, 1.0, 0)   # y = q / 2
    np.testing.assert_array_equal(table[128 + np.array([1, 3, -1, -3, 100])], [1, 2, -1, -2, 50])


def test_unsupported_quantisation_is_reported():
    with pytest.raises(UnsupportedOpError, match="1/256"):
        K.logistic_table(0.1, 0, 0.1, 0)
    with pytest.raises(UnsupportedOpError, match="SOFTMAX"):
        K.prepare_softmax(0.1, out_s=0.5, out_zp=0)
