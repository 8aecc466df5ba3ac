"""int16 VPU kernels (TFLite's 16x8 scheme: int16 activations, zero point 0) pinned to LiteRT's
reference kernels (BUILTIN_REF) on generated single-operator models: ADD, SUB, MUL, LOGISTIC,
TANH (every input code), SOFTMAX, MEAN, AVERAGE / MAX pooling, RESIZE and CONCATENATION."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from npukit.errors import UnsupportedOpError
from npukit.ir.graph import PoolAttrs
from npukit.kernels import kernels_vpu as kv
from npukit.kernels import kernels_vpu16 as k16
from npukit.kernels.kernels_mxu import activation_range
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

SETTINGS = settings(max_examples=25, deadline=None)
scales = st.floats(1e-5, 3e-2).map(lambda s: float(np.float32(s)))
seeds = st.integers(0, 2 ** 16)
ONE = 1 / 32768


def q(name, shape, scale):
    return TensorSpec(name, tuple(shape), "int16", scale, 0)


def codes(rng, shape):
    return rng.integers(-32768, 32768, size=shape).astype(np.int16)


SHAPES = [((2, 5, 7), (2, 5, 7)), ((2, 5, 7), (7,)), ((3, 4), (3, 1)), ((1, 3, 4, 6), (1, 1, 1, 6))]


@SETTINGS
@given(op=st.sampled_from(["ADD", "SUB", "MUL"]), shapes=st.sampled_from(SHAPES), s1=scales, s2=scales,
       so=scales, act=st.sampled_from([(0, None), (1, "relu")]), seed=seeds)
def test_add_sub_mul_16x8_equal_litert(op, shapes, s1, s2, so, act, seed):
    from npukit.ir.graph import Clamp
    rng = np.random.default_rng(seed)
    a, b = codes(rng, shapes[0]), codes(rng, shapes[1])
    opts = getattr(tfl, {"ADD": "AddOptionsT", "SUB": "SubOptionsT", "MUL": "MulOptionsT"}[op])()
    opts.fusedActivationFunction = act[0]
    if op != "MUL":
        opts.potScaleInt16 = False          # what the converter writes for 16x8 models
    clamp = Clamp(0.0, None) if act[1] else None
    model = build_single_op(op, [q("a", a.shape, s1), q("b", b.shape, s2)], [q("y", shapes[0], so)], opts)
    want = run_reference(model, [a, b])[0]
    if op == "MUL":
        got = kv.mul(a, b, kv.prepare_mul(s1, 0, s2, 0, so, 0, clamp, np.int16), np.int16)
    else:
        p = kv.prepare_add(s1, 0, s2, 0, so, 0, clamp, sub=op == "SUB", dtype=np.int16, left_shift=15)
        got = kv.add(a, b, p, np.int16)
    np.testing.assert_array_equal(got, want)


ALL_CODES = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 256, 256)


@settings(max_examples=12, deadline=None)
@given(tanh=st.booleans(), scale=st.one_of(st.floats(1e-6, 2.5).map(lambda s: float(np.float32(s))),
                                           st.sampled_from([2.0 ** -12, 2.0 ** -11, 2.0 ** -13])))
def test_logistic_tanh_16x8_equal_litert_on_every_code(tanh, scale):
    model = build_single_op("TANH" if tanh else "LOGISTIC", [q("x", ALL_CODES.shape, scale)],
                            [q("y", ALL_CODES.shape, ONE)])
    want = run_reference(model, [ALL_CODES])[0]
    got = k16.sigmoid16(ALL_CODES, k16.prepare_sigmoid16(scale, 0, ONE, 0, tanh))
    np.testing.assert_array_equal(got, want)


def test_logistic_tanh_16x8_close_to_float():
    """Within 4 output steps (of 32768) of the real function: the table's own accuracy."""
    for tanh in (False, True):
        for scale in (1e-4, 3.3e-4, 2.0 ** -12):
            got = k16.sigmoid16(ALL_CODES, k16.prepare_sigmoid16(scale, 0, ONE, 0, tanh)).astype(np.float64)
            want = np.clip(k16.sigmoid16_float(ALL_CODES, scale, tanh), -32768, 32767)
            assert np.max(np.abs(got - want)) <= 4


def test_sigmoid_table_is_sigmoid_of_i_over_24():
    """Q0.16 sigmoid(i / 24): each entry is round(65536 sigmoid(i / 24)) or one above it (44 are)."""
    i = np.arange(256)
    nearest = np.floor(65536 / (1 + np.exp(-i / 24)) + 0.5).astype(np.int64)
    above = k16.SIGMOID_TABLE - nearest
    assert set(above.tolist()) == {0, 1} and int(above.sum()) == 44
    assert k16.SIGMOID_TABLE[0] == 32768 and np.all(np.diff(k16.SIGMOID_TABLE) >= 0)


def test_sigmoid16_refusals():
    with pytest.raises(UnsupportedOpError, match="1/32768"):
        k16.prepare_sigmoid16(1e-3, 0, 1 / 256, 0, False)
    with pytest.raises(UnsupportedOpError, match="zero point"):
        k16.prepare_sigmoid16(1e-3, 3, ONE, 0, True)
    with pytest.raises(UnsupportedOpError, match="above"):
        k16.prepare_sigmoid16(3.0, 0, ONE, 0, True)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 300), scale=st.floats(1e-5, 1e-2), beta=st.sampled_from([1.0, 0.5]),
       spread=st.sampled_from([50, 2000, 32768]), seed=seeds)
@example(rows=2, cols=21, scale=1e-05, beta=1.0, spread=50, seed=1654)   # the double reciprocal table
def test_softmax_16x8_equals_litert(rows, cols, scale, beta, spread, seed):
    scale = float(np.float32(scale))
    x = np.random.default_rng(seed).integers(-spread, spread, size=(rows, cols)).clip(-32768, 32767).astype(np.int16)
    opts = tfl.SoftmaxOptionsT()
    opts.beta = beta
    model = build_single_op("SOFTMAX", [q("x", x.shape, scale)], [q("y", x.shape, ONE)], opts)
    want = run_reference(model, [x])[0]
    np.testing.assert_array_equal(k16.softmax16(x, k16.prepare_softmax16(scale, 0, beta, ONE, 0)), want)


def test_softmax_16x8_hand_worked():
    p = k16.prepare_softmax16(1e-3, 0, 1.0, ONE, 0)
    out = k16.softmax16(np.zeros((1, 4), np.int16), p)          # equal inputs: 1/4 each
    assert np.all(np.abs(out.astype(int) - 8192) <= 2)
    one = k16.softmax16(np.array([[32767, -32768]], np.int16), p)  # exp(-65.5): the table's floor at -10
    assert one[0, 0] >= 32766 and one[0, 1] == k16.exp_lut()[0] == 2


def test_softmax_16x8_zero_tail_hand_worked():
    """npukit's own int16 softmax (floor_tail 0): a difference below -10 counts 0, so
    [32767, -32768] at scale 1e-3 (a difference of -65.5) gives [32767, 0] where LiteRT gives
    the floor's 2 to the second and takes it from the first; rows within the table equal LiteRT's."""
    own = k16.prepare_softmax16(1e-3, 0, 1.0, ONE, 0, floor_tail=False)
    assert own.floor_tail == 0 and k16.prepare_softmax16(1e-3, 0, 1.0, ONE, 0).floor_tail == 1
    assert k16.softmax16(np.array([[32767, -32768]], np.int16), own).tolist() == [[32767, 0]]
    x = np.random.default_rng(5).integers(-5000, 5000, (3, 40)).astype(np.int16)   # differences >= -10
    np.testing.assert_array_equal(k16.softmax16(x, own), k16.softmax16(x, k16.prepare_softmax16(1e-3, 0, 1.0, ONE, 0)))


@settings(max_examples=40, deadline=None)
@given(cols=st.integers(2, 20000), sd=st.floats(0.5, 4.0), peak=st.floats(0.0, 25.0), seed=seeds)
def test_softmax_16x8_zero_tail_close_to_float(cols, sd, peak, seed):
    """Against float softmax of the same codes, in output steps (1 / 32768): with S the row's
    sum of exponentials in steps, T the part of it below -10 (now counted 0) and n the classes
    within 10 of the maximum (each exponential within 2 steps of its table value), every output
    F is within 3 + F (2 n + T) / (S - T). LiteRT's floor instead adds about 2 per class below
    -10: a 6625-class row peaked 20 above a N(0, 2) background loses a third of its maximum."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cols)) * sd
    x[:, rng.integers(0, cols)] += peak
    scale = float(np.float32(max(np.abs(x).max(), 1e-3) / 32767))
    codes = np.round(x / scale).astype(np.int16)
    d = codes.astype(np.float64) * scale
    d -= d.max(axis=1, keepdims=True)
    want = np.exp(d) / np.exp(d).sum(axis=1, keepdims=True) * 32768
    got = k16.softmax16(codes, k16.prepare_softmax16(scale, 0, 1.0, ONE, 0, floor_tail=False)).astype(np.float64)
    total = np.exp(d).sum(axis=1, keepdims=True) * 32768
    tail = np.where(d < -10, np.exp(d), 0).sum(axis=1, keepdims=True) * 32768
    near = (d >= -10).sum(axis=1, keepdims=True)
    assert np.all(np.abs(got - want) <= 3 + want * (2 * near + tail) / (total - tail))


def test_softmax_16x8_litert_floor_on_many_classes():
    """The cap this option removes, hand-checked: 6625 classes 20 above N(0, 2) noise (a text
    recogniser's row): LiteRT's top output is about 1 / (1 + 2 * 6625 / 32768) = 0.71 of float's,
    npukit's own within 1% of it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 6625)) * 2
    x[0, 7] += 20
    scale = float(np.float32(np.abs(x).max() / 32767))
    codes = np.round(x / scale).astype(np.int16)
    lite = k16.softmax16(codes, k16.prepare_softmax16(scale, 0, 1.0, ONE, 0))[0, 7]
    own = k16.softmax16(codes, k16.prepare_softmax16(scale, 0, 1.0, ONE, 0, floor_tail=False))[0, 7]
    d = codes[0].astype(np.float64) * scale
    top = 32768 / np.exp(d - d[7]).sum()
    assert abs(lite / top - 1 / (1 + 2 * 6625 / 32768)) < 0.03 and abs(own / top - 1) < 0.01


MEAN_CASES = [((2, 5, 7, 3), (1, 2), True), ((2, 5, 7, 3), (2, 1), False), ((2, 4, 6, 3), (3,), True),
              ((3, 17), (1,), True), ((1, 16, 16, 2), (1, 2), True)]


@SETTINGS
@given(case=st.sampled_from(MEAN_CASES), s_in=scales, s_out=scales, seed=seeds)
def test_mean_16x8_equals_litert(case, s_in, s_out, seed):
    shape, axes, keepdims = case
    x = codes(np.random.default_rng(seed), shape)
    out = np.zeros(shape).sum(axis=axes, keepdims=keepdims).shape
    opts = tfl.ReducerOptionsT()
    opts.keepDims = keepdims
    axis = TensorSpec("axis", (len(axes),), "int32", data=np.array(axes, np.int32))
    model = build_single_op("MEAN", [q("x", shape, s_in), axis], [q("out", out, s_out)], opts)
    want = run_reference(model, [x])[0]
    n = int(np.prod([shape[a] for a in axes]))
    got = kv.mean(x, axes, kv.prepare_mean(s_in, 0, s_out, 0, n), keepdims=keepdims, dtype=np.int16)
    np.testing.assert_array_equal(got, want)


def _padding(n, k, s, same):
    if same:
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return out, total // 2, total - total // 2
    return (n - k) // s + 1, 0, 0


@SETTINGS
@given(h=st.integers(1, 8), w=st.integers(1, 8), c=st.integers(1, 4), k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 2), st.integers(1, 2)), same=st.booleans(), average=st.booleans(),
       relu=st.booleans(), scale=scales, seed=seeds)
def test_pool_16x8_equals_litert(h, w, c, k, s, same, average, relu, scale, seed):
    oh, top, bottom = _padding(h, k[0], s[0], same)
    ow, left, right = _padding(w, k[1], s[1], same)
    assume(oh >= 1 and ow >= 1)
    x = codes(np.random.default_rng(seed), (1, h, w, c))
    opts = tfl.Pool2DOptionsT()
    opts.padding = tfl.Padding.SAME if same else tfl.Padding.VALID
    opts.strideH, opts.strideW, opts.filterHeight, opts.filterWidth = *s, *k
    opts.fusedActivationFunction = 1 if relu else 0
    op = "AVERAGE_POOL_2D" if average else "MAX_POOL_2D"
    model = build_single_op(op, [q("x", x.shape, scale)], [q("y", (1, oh, ow, c), scale)], opts)
    want = run_reference(model, [x])[0]
    from npukit.ir.graph import Clamp
    lo, hi = activation_range(Clamp(0.0, None) if relu else None, scale, 0, np.int16)
    got = (kv.avg_pool if average else kv.max_pool)(x, PoolAttrs(k, s, (top, left, bottom, right)), lo, hi)
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(h=st.integers(1, 5), w=st.integers(1, 5), oh=st.integers(1, 11), ow=st.integers(1, 11),
       flags=st.sampled_from([(False, False), (True, False), (False, True)]), bilinear=st.booleans(), seed=seeds)
def test_resize_16x8_equals_litert(h, w, oh, ow, flags, bilinear, seed):
    x = codes(np.random.default_rng(seed), (1, h, w, 2))
    opts = tfl.ResizeBilinearOptionsT() if bilinear else tfl.ResizeNearestNeighborOptionsT()
    opts.alignCorners, opts.halfPixelCenters = flags
    size = TensorSpec("size", (2,), "int32", data=np.array([oh, ow], np.int32))
    op = "RESIZE_BILINEAR" if bilinear else "RESIZE_NEAREST_NEIGHBOR"
    model = build_single_op(op, [q("x", x.shape, 1e-3), size], [q("y", (1, oh, ow, 2), 1e-3)], opts)
    want = run_reference(model, [x])[0]
    got = (kv.resize_bilinear if bilinear else kv.resize_nearest)(x, (oh, ow), *flags)
    np.testing.assert_array_equal(got, want)


def test_concat_16x8_equals_litert():
    rng = np.random.default_rng(3)
    a, b = codes(rng, (1, 3, 4, 2)), codes(rng, (1, 3, 4, 5))
    opts = tfl.ConcatenationOptionsT()
    opts.axis = 3
    model = build_single_op("CONCATENATION", [q("a", a.shape, 1e-3), q("b", b.shape, 1e-3)],
                            [q("y", (1, 3, 4, 7), 1e-3)], opts)
    np.testing.assert_array_equal(np.concatenate([a, b], axis=3), run_reference(model, [a, b])[0])
