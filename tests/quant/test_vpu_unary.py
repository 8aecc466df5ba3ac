"""Element-wise function tables against LiteRT: LOG, EXP, ABS, SQRT, RSQRT and NEG equal the
reference kernels (BUILTIN_REF) on every int8 code; ELU (no reference kernel) equals LiteRT's
default kernel, also compiled and run; the inverse square root against the closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.errors import UnsupportedOpError
from npukit.kernels import kernels_vpu_unary as U
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_default, run_reference

SETTINGS = settings(max_examples=40, deadline=None)
scales = st.floats(min_value=-9.0, max_value=1.0).map(lambda e: float(np.float32(2.0 ** e)))
zero_points = st.integers(-128, 127)
CODES = np.arange(-128, 128)


def _model(op: str, shape, s_in, z_in, s_out, z_out) -> bytes:
    return build_single_op(op, [TensorSpec("x", shape, "int8", s_in, z_in)],
                           [TensorSpec("y", shape, "int8", s_out, z_out)])


def litert_on_codes(op: str, codes: np.ndarray, s_in, z_in, s_out, z_out) -> np.ndarray:
    x = codes.astype(np.int8).reshape(1, -1)
    return run_reference(_model(op, x.shape, s_in, z_in, s_out, z_out), [x])[0].ravel()


@SETTINGS
@given(op=st.sampled_from(["LOG", "EXP", "ABS", "NEG"]), s_in=scales, z_in=zero_points, s_out=scales,
       z_out=zero_points, same=st.booleans())
def test_table_equals_litert_on_every_code(op, s_in, z_in, s_out, z_out, same):
    if same:                    # ABS has its own path for equal scales
        s_out = s_in
    fn = {"LOG": "log", "EXP": "exp", "ABS": "abs", "NEG": "tfl_neg"}[op]
    table = U.unary_table(fn, s_in, z_in, s_out, z_out)
    np.testing.assert_array_equal(table, litert_on_codes(op, CODES, s_in, z_in, s_out, z_out))


@SETTINGS
@given(op=st.sampled_from(["SQRT", "RSQRT"]), s_in=scales, z_in=zero_points, s_out=scales, z_out=zero_points)
def test_root_tables_equal_litert_where_it_is_defined(op, s_in, z_in, s_out, z_out):
    codes = CODES[CODES >= z_in]            # LiteRT refuses negative inputs
    table = U.unary_table(op.lower(), s_in, z_in, s_out, z_out)
    np.testing.assert_array_equal(table[codes + 128], litert_on_codes(op, codes, s_in, z_in, s_out, z_out))


def test_root_tables_below_zero_are_documented_values():
    assert set(U.sqrt_table(0.1, 0, 0.1, -7)[:128]) == {-7}          # sqrt(max(x, 0)) = 0
    assert set(U.rsqrt_table(0.1, 0, 0.1, -7)[:129]) == {127}        # as LiteRT's q == zp case


@settings(max_examples=200, deadline=None)
@given(v=st.one_of(st.integers(2, 1 << 12), st.integers(2, (1 << 31) - 1)))
def test_inverse_sqrt_multiplier_close_to_closed_form(v):
    m, shift = U.inv_sqrt_multiplier_exp(v)
    assert 0 < m < 1 << 31 and shift <= 0
    assert m * 2.0 ** (shift - 31) == pytest.approx(1 / math.sqrt(v), rel=2e-6)


@settings(max_examples=40, deadline=None)
@given(s_in=scales, z_in=zero_points, s_out=scales, z_out=zero_points)
def test_elu_table_equals_litert_default_kernel(s_in, z_in, s_out, z_out):
    x = CODES.astype(np.int8).reshape(1, 256)
    want = run_default(_model("ELU", x.shape, s_in, z_in, s_out, z_out), [x])[0].ravel()
    np.testing.assert_array_equal(U.unary_table("tfl_elu", s_in, z_in, s_out, z_out), want)


@pytest.mark.parametrize("quant", [(0.05, 3, 0.04, -5), (0.05, 0, 0.04, 0), (0.02, -100, 0.03, 20)])
def test_compiled_elu_equals_litert_default_kernel(tmp_path, quant):
    """Exact ties (0.7 / 0.04 = 17.5) included: LiteRT rounds them to even after adding zp."""
    import npukit
    model = _model("ELU", (2, 9, 31), *quant)
    path = tmp_path / "elu.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-m")
    assert [(la.op, la.target) for la in prog.program.layers] == [("unary", "npu")]
    x = np.random.default_rng(0).integers(-128, 128, size=(2, 9, 31)).astype(np.int8)
    got = prog.run({prog.input_names[0]: x})[prog.output_names[0]]
    np.testing.assert_array_equal(got, run_default(model, [x])[0])


@pytest.mark.parametrize("fn,alpha,gamma", [("elu", 0.5, None), ("selu", None, None), ("erf", None, None),
                                            ("softplus", None, None), ("reciprocal", None, None),
                                            ("cos", None, None), ("celu", 1.5, None)])
def test_float_tables_within_half_an_lsb(fn, alpha, gamma):
    s_in, z_in, s_out, z_out = 0.03, 5, 0.02, -9
    x = s_in * (CODES - z_in)
    exact = {"elu": lambda v: np.where(v > 0, v, alpha * (np.exp(v) - 1)),
             "selu": lambda v: 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * (np.exp(v) - 1)),
             "erf": np.vectorize(math.erf), "softplus": lambda v: np.log1p(np.exp(v)),
             "reciprocal": lambda v: 1 / v, "cos": np.cos,
             "celu": lambda v: np.maximum(v, 0) + np.minimum(0, alpha * (np.exp(v / alpha) - 1))}[fn]
    with np.errstate(divide="ignore"):
        want = np.clip(exact(x) / s_out + z_out, -128, 127)
    got = U.unary_table(fn, s_in, z_in, s_out, z_out, alpha, gamma)
    assert np.abs(got - want).max() <= 0.5 + 1e-6


def test_unknown_function_is_refused():
    with pytest.raises(UnsupportedOpError, match="cbrt"):
        U.unary_table("cbrt", 0.1, 0, 0.1, 0)


@pytest.mark.parametrize("op", ["SIN", "COS", "SQUARE", "EXP", "NEG"])
def test_float_tflite_functions_within_one_lsb_of_litert(tmp_path, op):
    """A float TFLite model (LiteRT has no int8 SIN / COS / SQUARE) is calibrated and runs as
    one table: within one output LSB of LiteRT's float kernel on the quantised input."""
    import warnings

    import npukit
    from npukit.kernels import kernels_vpu as kv
    shape = (1, 6, 40)
    model = build_single_op(op, [TensorSpec("x", shape, "float32")], [TensorSpec("y", shape, "float32")])
    path = tmp_path / "f.tflite"
    path.write_bytes(model)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": rng.uniform(-3, 3, (8, *shape)).astype(np.float32)})
    assert [(la.op, la.target) for la in prog.program.layers] == [("unary", "npu")]
    x_io, y_io = prog.program.inputs[0], prog.program.outputs[0]
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    x_q = kv.dequantize(kv.quantize(x, x_io.scale, x_io.zero_point), x_io.scale, x_io.zero_point)
    want = run_reference(model, [x_q.astype(np.float32)])[0]
    lo, hi = (np.array([-128, 127]) - y_io.zero_point) * y_io.scale
    got = prog.run({prog.input_names[0]: x})[prog.output_names[0]]
    assert np.abs(got - np.clip(want, lo, hi)).max() <= y_io.scale * 1.001


def test_vectorised_erf_is_math_erf_within_two_ulps():
    """The float executor's erf (GELU, Erf) against math.erf, value by value: normal draws,
    a dense sweep of [-8, 8] (the grid points, the cut at 6), signed zeros, infinities, NaN."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 200_000), np.linspace(-8, 8, 40_001), np.arange(-384, 385) / 64,
                        [0.0, -0.0, 6.0 - 1e-12, 1e-300, -1e-300, 40.0, np.inf, -np.inf]])
    want = np.array([math.erf(v) for v in x])
    got = U.erf(x)
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)) + 1e-300)
    assert np.signbit(U.erf(-0.0)) and np.isnan(U.erf(np.array([np.nan]))).all()
