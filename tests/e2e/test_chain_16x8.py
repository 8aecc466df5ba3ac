"""A small 16x8 TFLite model (int16 activations, zero point 0) chaining the VPU's int16 ops:
ADD, SUB, RELU6, EXP, LOG, LEAKY_RELU, MUL, LOGISTIC, TANH, CONCATENATION, AVERAGE / MAX pooling, bilinear RESIZE, MEAN and
SOFTMAX. `npukit.compile` runs it with no host operator, equal to LiteRT's reference
interpreter bit for bit, also after a round trip through the .npub bytes."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

import npukit
from npukit.errors import UnsupportedOpError
from npukit.testing.tflite_builder import Operator, TensorSpec, build_model, build_single_op, run_reference

ONE = 1 / 32768


def q(name, shape, s):
    return TensorSpec(name, tuple(shape), "int16", s, 0)


def _pool(stride, k, same):
    o = tfl.Pool2DOptionsT()
    o.padding = tfl.Padding.SAME if same else tfl.Padding.VALID
    o.strideH = o.strideW = stride
    o.filterHeight = o.filterWidth = k
    return o


def chain_model() -> bytes:
    sh = (1, 4, 6, 8)
    x, y = q("x", sh, 2e-4), q("y", sh, 3e-4)
    add_o, sub_o = tfl.AddOptionsT(), tfl.SubOptionsT()
    add_o.potScaleInt16 = sub_o.potScaleInt16 = False
    s, d, m = q("sum", sh, 4e-4), q("diff", sh, 4e-4), q("prod", sh, 1e-4)
    sig, th = q("sig", sh, ONE), q("th", sh, ONE)
    r6, lk = q("r6", sh, 3e-4), q("lk", sh, 3e-4)
    ex, lg = q("ex", sh, 1.3e-2), q("lg", sh, 2e-4)        # exp of [0, 6] reaches 403; its log, 6
    lk_o = tfl.LeakyReluOptionsT()
    lk_o.alpha = -0.3
    cat_o = tfl.ConcatenationOptionsT()
    cat_o.axis = 3
    cat, pooled, maxed = q("cat", (1, 4, 6, 16), ONE), q("pooled", (1, 2, 3, 16), ONE), q("maxed", (1, 2, 3, 16), ONE)
    size = TensorSpec("size", (2,), "int32", data=np.array([4, 6], np.int32))
    rs_o = tfl.ResizeBilinearOptionsT()
    rs_o.halfPixelCenters = True
    up = q("up", (1, 4, 6, 16), ONE)
    axes = TensorSpec("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    red_o = tfl.ReducerOptionsT()
    red_o.keepDims = True
    mean, out = q("mean", (1, 1, 1, 16), 1.5 * ONE), q("out", (1, 1, 1, 16), ONE)
    sm_o = tfl.SoftmaxOptionsT()
    sm_o.beta = 1.0
    ops = [Operator("ADD", (x, y), (s,), add_o), Operator("SUB", (x, y), (d,), sub_o),
           Operator("RELU6", (s,), (r6,)), Operator("LEAKY_RELU", (d,), (lk,), lk_o),
           Operator("EXP", (r6,), (ex,)), Operator("LOG", (ex,), (lg,)),
           Operator("MUL", (lg, lk), (m,), tfl.MulOptionsT()),
           Operator("LOGISTIC", (m,), (sig,)), Operator("TANH", (s,), (th,)),
           Operator("CONCATENATION", (sig, th), (cat,), cat_o),
           Operator("AVERAGE_POOL_2D", (cat,), (pooled,), _pool(2, 2, False)),
           Operator("MAX_POOL_2D", (pooled,), (maxed,), _pool(1, 2, True)),
           Operator("RESIZE_BILINEAR", (maxed, size), (up,), rs_o),
           Operator("MEAN", (up, axes), (mean,), red_o), Operator("SOFTMAX", (mean,), (out,), sm_o)]
    return build_model(ops, [x, y], [out, up])


@pytest.mark.parametrize("arch", ["npu-s", "npu-m"])
def test_16x8_chain_on_the_npu_equals_litert(tmp_path, arch):
    model = chain_model()
    path = tmp_path / "chain.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, arch)
    assert prog.profile().host_ops == []
    assert {layer.target for layer in prog.program.layers} == {"npu"}
    again = npukit.loads(prog.to_bytes())
    rng = np.random.default_rng(0)
    for _ in range(4):
        xs = [rng.integers(-32768, 32768, size=(1, 4, 6, 8)).astype(np.int16) for _ in range(2)]
        want = run_reference(model, xs)
        for p in (prog, again):
            got = p.run(dict(zip(p.input_names, xs)))
            for name, w in zip(p.output_names, want):
                assert got[name].dtype == np.int16
                np.testing.assert_array_equal(got[name], w, err_msg=name)


def test_other_int16_operators_are_refused_naming_them(tmp_path):
    x = q("x", (1, 8), 1e-3)
    path = tmp_path / "hs.tflite"
    path.write_bytes(build_single_op("HARD_SWISH", [x], [q("y", (1, 8), 1e-3)]))
    with pytest.raises(UnsupportedOpError, match="HARD_SWISH") as e:
        npukit.compile(path, "npu-s")
    assert "\n" not in str(e.value) and "int16" in str(e.value)


def test_int16_add_on_the_power_of_two_path_runs_on_the_host(tmp_path):
    """pot_scale_int16 with power-of-two scales takes LiteRT's shift path, which the NPU does not
    run: LiteRT runs that ADD on the host, with the reason, and the result is LiteRT's."""
    opts = tfl.AddOptionsT()
    opts.potScaleInt16 = True
    model = build_single_op("ADD", [q("a", (1, 8), 2 ** -10), q("b", (1, 8), 2 ** -11)], [q("y", (1, 8), 2 ** -10)], opts)
    path = tmp_path / "pot.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-s")
    assert ["pot_scale_int16" in h["reason"] for h in prog.profile().host_ops] == [True]
    xs = [np.arange(-4000, 4000, 1000, dtype=np.int16).reshape(1, 8)] * 2
    np.testing.assert_array_equal(prog.run(dict(zip(prog.input_names, xs)))[prog.output_names[0]],
                                  run_reference(model, xs)[0])


def test_float_io_around_a_16x8_model(tmp_path):
    """float -> QUANTIZE (int16) -> TANH -> DEQUANTIZE -> float: the boundaries fold into the
    program's I/O conversion and the output equals LiteRT's."""
    xf, yf = TensorSpec("xf", (1, 64), "float32"), TensorSpec("yf", (1, 64), "float32")
    x, y = q("x", (1, 64), 1e-3), q("y", (1, 64), ONE)
    model = build_model([Operator("QUANTIZE", (xf,), (x,)), Operator("TANH", (x,), (y,)),
                         Operator("DEQUANTIZE", (y,), (yf,))], [xf], [yf])
    path = tmp_path / "fio.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-s")
    assert {layer.target for layer in prog.program.layers} == {"npu"}
    v = np.linspace(-30, 30, 64, dtype=np.float32).reshape(1, 64)
    np.testing.assert_array_equal(prog.run({prog.input_names[0]: v})[prog.output_names[0]], run_reference(model, [v])[0])
