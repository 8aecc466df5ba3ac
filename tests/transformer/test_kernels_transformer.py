"""Transformer integer kernels against independent oracles: LiteRT's reference BATCH_MATMUL
and GELU (single-op models), and float layer norm within a stated error."""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.kernels import kernels_transformer as kt
from npukit.kernels import kernels_vpu as kv
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

SETTINGS = settings(max_examples=25, deadline=None)
scales = st.floats(min_value=-8.0, max_value=0.0).map(lambda e: float(np.float32(2.0 ** e)))
zps = st.integers(-128, 127)
ALL_CODES = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


@SETTINGS
@given(m=st.integers(1, 6), k=st.integers(1, 40), n=st.integers(1, 6), adj_y=st.booleans(),
       sa=scales, sb=scales, za=zps, zb=zps, zo=zps, seed=st.integers(0, 2 ** 16))
def test_batch_matmul_matches_litert(m, k, n, adj_y, sa, sb, za, zb, zo, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (2, m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (2, n, k) if adj_y else (2, k, n), dtype=np.int8)
    so = float(np.float32(sa * sb * np.sqrt(k) * 40))
    opts = tfl.BatchMatMulOptionsT()
    opts.adjX, opts.adjY = False, adj_y
    model = build_single_op("BATCH_MATMUL", [TensorSpec("a", a.shape, "int8", sa, za),
                                             TensorSpec("b", b.shape, "int8", sb, zb)],
                            [TensorSpec("out", (2, m, n), "int8", so, zo)], opts)
    want = run_reference(model, [a, b])[0]
    p = kt.prepare_batch_matmul(sa, za, sb, zb, so, zo)
    np.testing.assert_array_equal(kt.batch_matmul(a, b, p, transpose_b=adj_y), want)


@SETTINGS
@given(s_in=scales.map(lambda s: s * 16), z_in=zps, s_out=scales.map(lambda s: s * 16), z_out=zps,
       approximate=st.booleans())
def test_gelu_table_matches_litert(s_in, z_in, s_out, z_out, approximate):
    opts = tfl.GeluOptionsT()
    opts.approximate = approximate
    model = build_single_op("GELU", [TensorSpec("x", ALL_CODES.shape, "int8", s_in, z_in)],
                            [TensorSpec("out", ALL_CODES.shape, "int8", s_out, z_out)], opts)
    want = run_reference(model, [ALL_CODES])[0].ravel()
    got = kt.gelu_table(s_in, z_in, s_out, z_out, "tanh" if approximate else "none")
    assert np.max(np.abs(got.astype(int) - want.astype(int))) <= 1     # float32 erf/tanh ulps
    assert np.mean(got == want) >= 0.98


@SETTINGS
@given(n=st.sampled_from([8, 32, 384]), rows=st.integers(1, 4), seed=st.integers(0, 2 ** 16),
       wide=st.booleans(), outlier=st.floats(1.0, 50.0))
def test_layer_norm_close_to_float(n, rows, seed, wide, outlier):
    """Error bound: one output step plus the normalised value's and gamma's rounding
    (|z| <= sqrt(n), z has 2^-10 steps, gamma has 2^-15 of its max) plus the integer square
    root's truncation (relative 1 / sigma, sigma = n * std in input codes)."""
    rng = np.random.default_rng(seed)
    dtype = np.int16 if wide else np.int8
    x = rng.standard_normal((rows, n))
    x[:, 0] *= outlier                                       # a residual-stream style channel
    s_in = float(np.abs(x).max() / (32767 if wide else 127))
    xq = kv.quantize(x, s_in, 0, dtype)
    gamma, beta = rng.uniform(0.2, 2.0, n), rng.uniform(-1, 1, n)
    ref = kt.layer_norm_float((xq.astype(np.float64)) * s_in, gamma, beta, 1e-12)
    s_out = float(np.abs(ref).max() / 100)
    p = kt.prepare_layer_norm(s_in, gamma, beta, 1e-12, s_out, 3)
    got = (kt.layer_norm(xq, p).astype(np.float64) - 3) * s_out
    bound = s_out + np.sqrt(n) * gamma.max() * 2 ** -10 + 2 * np.abs(gamma).max() / 32767 * np.sqrt(n) + 1e-6
    bound += np.abs(ref - beta).max() / (n * xq.astype(np.float64).std(axis=-1).min())
    assert np.max(np.abs(got - ref)) <= bound


def test_layer_norm_hand_worked():
    """x = [1, 3] (any zero point): mean 2, std 1, so the normalised values are [-1, 1]."""
    p = kt.prepare_layer_norm(1.0, np.ones(2), np.zeros(2), 0.0, 1 / 64, 0)
    np.testing.assert_array_equal(kt.layer_norm(np.array([[1, 3], [-7, -5]], np.int8), p), [[-64, 64], [-64, 64]])


def test_isqrt_exact():
    v = np.array([0, 1, 2, 3, 4, 15, 16, 17, 2 ** 52 - 1, 2 ** 52, 10 ** 17 + 3], np.int64)
    r = kt.isqrt(v)
    assert np.all(r * r <= v) and np.all((r + 1) * (r + 1) > v)
