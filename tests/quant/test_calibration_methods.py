"""The entropy calibrator (TensorRT's KL method, adapted to asymmetric int8) and the
compile-time CalibrationWarnings, each on a small case whose answer is known."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from npukit.ptq import quantise
from npukit.ir.graph import Clamp, ConvAttrs, DType, Graph, Node, NoAttrs, Op, SoftmaxAttrs, Tensor
from npukit.quant.calib_warnings import CalibrationWarning, calibration_findings
from npukit.quant.calibrate import METHODS, Observer, entropy_threshold, observe

RNG = np.random.default_rng(0)


def test_entropy_clips_gaussian_outliers_far_below_the_max():
    x = RNG.standard_normal(100_000).astype(np.float32)
    x[:10] = 60.0
    t = entropy_threshold(np.abs(x), 60.0)
    assert 2.5 < t < 6.0        # a few sigma: the outliers are clipped, the bell is kept


def test_entropy_keeps_uniform_data_whole():
    u = RNG.uniform(0, 10, 100_000)
    assert entropy_threshold(u, float(u.max()), 255) >= 0.95 * u.max()


def test_entropy_is_a_method_and_keeps_the_small_side_within_the_threshold():
    assert "entropy" in METHODS
    obs = Observer(0)
    x = RNG.standard_normal((64, 8, 8, 4)).astype(np.float32)
    x.flat[:5] = 80.0        # positive outliers set the threshold; the negative side stays whole
    obs.update(x)
    r = obs.range("entropy")
    assert r.hi < 10 and r.lo == pytest.approx(float(x.min()))
    relu = Observer(1)
    relu.update(np.maximum(x, 0))
    assert relu.range("entropy").lo == 0.0 and relu.range("entropy").hi < 10


def test_observer_keeps_per_channel_extremes_bounded():
    obs = Observer(0)
    for _ in range(3):
        obs.update(RNG.standard_normal((2, 4, 4, 6)))
    assert obs.channel_amax.shape == (6,)


def _graph(nodes, tensors, inputs, outputs) -> Graph:
    return Graph(tuple(nodes), {t.name: t for t in tensors}, inputs, outputs)


def _act_graph(op: Op, attrs=NoAttrs()) -> Graph:
    f = DType.F32
    return _graph([Node(op, "head", ("x",), ("y",), attrs)],
                  [Tensor("x", (1, 16), f), Tensor("y", (1, 16), f)], ("x",), ("y",))


def _findings(g: Graph, feeds) -> list[str]:
    observers, _ = observe(g, feeds)
    return calibration_findings(g, observers, {n: o.range("minmax") for n, o in observers.items()})


def test_sigmoid_calibrated_only_on_negatives_is_named():
    g = _act_graph(Op.SIGMOID)
    found = _findings(g, [{"x": RNG.uniform(-3, -0.5, (1, 16)).astype(np.float32)} for _ in range(4)])
    assert len(found) == 1 and "'x'" in found[0] and "0.5" in found[0]
    flat = _findings(g, [{"x": RNG.uniform(-12, -8, (1, 16)).astype(np.float32)}])
    assert "nearly constant" in flat[0]
    assert _findings(g, [{"x": RNG.uniform(-4, 4, (1, 16)).astype(np.float32)}]) == []


def test_tanh_and_softmax_that_never_change_are_named():
    tanh = _findings(_act_graph(Op.TANH), [{"x": RNG.uniform(6, 9, (1, 16)).astype(np.float32)}])
    assert "tanh 'head'" in tanh[0] and "nearly constant" in tanh[0]
    soft = _findings(_act_graph(Op.SOFTMAX, SoftmaxAttrs()), [{"x": RNG.uniform(0, 0.01, (1, 16)).astype(np.float32)}])
    assert "softmax 'head'" in soft[0] and "uniform" in soft[0]


def _conv_graph(w: np.ndarray, b: np.ndarray, act=None) -> Graph:
    f, k, c = DType.F32, w.shape[0], w.shape[3]
    return _graph([Node(Op.CONV2D, "conv", ("x", "w", "b"), ("y",), ConvAttrs(act=act))],
                  [Tensor("x", (1, 6, 6, c), f), Tensor("w", w.shape, f, w), Tensor("b", (k,), f, b),
                   Tensor("y", (1, 6, 6, k), f)], ("x",), ("y",))


def test_degenerate_range_is_named():
    w = np.zeros((4, 1, 1, 3), np.float32)
    found = _findings(_conv_graph(w, np.ones(4, np.float32)), [{"x": RNG.standard_normal((1, 6, 6, 3)).astype(np.float32)}])
    assert any("tensor 'y' has a degenerate calibrated range" in m for m in found)


def test_outlier_channels_are_counted_and_named():
    w = np.eye(16, dtype=np.float32).reshape(16, 1, 1, 16)
    w[3] *= 200.0        # one channel 200x the others
    found = _findings(_conv_graph(w, np.zeros(16, np.float32)),
                      [{"x": RNG.standard_normal((1, 6, 6, 16)).astype(np.float32)} for _ in range(2)])
    assert any("activation 'y': 1 of 16 channels exceed 20x" in m for m in found)


def test_quantise_warns_once_per_tensor_with_real_calibration_only():
    g = _act_graph(Op.SIGMOID)
    calib = {"x": RNG.uniform(-3, -0.5, (4, 1, 16)).astype(np.float32)}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quantise(g, calib, sqnr=False)
        quantise(g, None, sqnr=False)
    found = [w for w in seen if issubclass(w.category, CalibrationWarning)]
    assert len(found) == 1 and "sigmoid 'head'" in str(found[0].message)


def test_cli_compile_prints_the_warning_once(tmp_path):
    from typer.testing import CliRunner
    from npukit.cli import app
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "s",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
    model = tmp_path / "s.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), model)
    np.savez(tmp_path / "c.npz", x=RNG.uniform(-3, -0.5, (4, 1, 16)).astype(np.float32))
    result = CliRunner().invoke(app, ["compile", str(model), "--calib", str(tmp_path / "c.npz"),
                                      "--calib-method", "entropy", "-o", str(tmp_path / "s.npub")])
    assert result.exit_code == 0, result.output
    assert result.output.count("caps the output at 0.5") == 1


def test_relu_output_is_not_an_outlier_finding_when_channels_are_alike():
    w = np.eye(16, dtype=np.float32).reshape(16, 1, 1, 16)
    found = _findings(_conv_graph(w, np.zeros(16, np.float32), Clamp(0.0, None)),
                      [{"x": RNG.standard_normal((1, 6, 6, 16)).astype(np.float32)}])
    assert found == []


def test_streamed_observers_and_noise_report_match_kept_values(tmp_path):
    """Observing each activation as the float run makes it gives the observers that observing
    every sample's kept activations does, and the noise report made without kept values
    equals the one made from them."""
    from npukit.compiler import load_model
    from npukit.measure import sqnr_report
    from npukit.kernels.float_exec import run_float
    from npukit.models import zoo
    from npukit.opt.pipeline import optimize
    from npukit.quant.calibrate import RandomFeeds
    from npukit.quant.quantize import quantize_graph
    from npukit.quant.wide import magnitude_int16

    g = optimize(load_model(zoo.save(zoo.resnet8(), tmp_path / "r8.onnx"), None))
    feeds = RandomFeeds(g, 3, seed=5)
    streamed, none_kept = observe(g, feeds, keep=0)
    assert none_kept == []
    kept = [run_float(g, feed, keep_all=True) for feed in feeds]
    for name, obs in streamed.items():
        ref = Observer(list(g.tensors).index(name))
        for values in kept:
            ref.update(values[name])
        assert (obs.lo, obs.hi) == (ref.lo, ref.hi)
        assert (obs.channel_amax is None) == (ref.channel_amax is None)
        if ref.channel_amax is not None:
            np.testing.assert_array_equal(obs.channel_amax, ref.channel_amax)
        assert len(obs.samples) == len(ref.samples)
        for a, b in zip(obs.samples, ref.samples):
            np.testing.assert_array_equal(a, b)
    qg = quantize_graph(g, {n: o.range("minmax") for n, o in streamed.items()}, magnitude_int16(g))
    assert sqnr_report(g, qg, list(feeds), kept) == sqnr_report(g, qg, list(feeds))


@pytest.mark.parametrize("shape", [(1, 7, 5, 3), (2, 3, 4, 96), (1, 1, 2, 3), (5, 9)])
@pytest.mark.parametrize("poles", [False, True])
def test_observer_extremes_are_numpys(shape, poles):
    x = RNG.standard_normal(shape).astype(np.float32)
    if poles:
        x.flat[::7] = np.inf
        x.flat[3::11] = -np.inf
        x.flat[1] = np.nan
    obs = Observer(0)
    obs.update(x)
    finite = x[np.isfinite(x)]
    assert (obs.lo, obs.hi) == (float(finite.min()), float(finite.max()))
    if len(shape) >= 3:
        want = np.abs(np.where(np.isfinite(x), x, 0)).reshape(-1, shape[-1]).max(axis=0)
        np.testing.assert_array_equal(obs.channel_amax, want)
