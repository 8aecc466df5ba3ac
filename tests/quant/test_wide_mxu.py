"""The float path's 16x8 layers: a conv, depthwise or fully connected layer touching a tensor
forced wide runs int16 in and out on the NPU, with requantising QUANTIZE layers at each
int8 / int16 boundary. The NPU equals npukit's integer reference executor, and the widened
layers bring the output closer to float than int8 everywhere."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from npukit.api import CompiledModel
from npukit.arch import load_arch
from npukit.codegen.context import CompileOptions
from npukit.codegen.lower import lower_program
from npukit.compiler import load_model
from npukit.ptq import quantise
from npukit.measure import quantize_inputs
from npukit.ir.graph import DType, Op
from npukit.kernels.float_exec import run_float
from npukit.sim.reference import run_reference


def conv_net(path, seed=0):
    """x [1,3,10,10] -> conv 3x3 (8) + relu -> depthwise 3x3 stride 2 (8) -> conv 1x1 (6) -> flatten
    -> gemm (5)."""
    rng = np.random.default_rng(seed)
    init = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("w1", rng.normal(0, 0.3, (8, 3, 3, 3))), ("b1", rng.normal(0, 0.1, 8)),
        ("w2", rng.normal(0, 0.3, (8, 1, 3, 3))), ("b2", rng.normal(0, 0.1, 8)),
        ("w3", rng.normal(0, 0.4, (6, 8, 1, 1))), ("b3", rng.normal(0, 0.1, 6)),
        ("w4", rng.normal(0, 0.2, (5, 6 * 5 * 5))), ("b4", rng.normal(0, 0.1, 5))]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["dw"], pads=[1, 1, 1, 1], group=8, strides=[2, 2]),
             helper.make_node("Conv", ["dw", "w3", "b3"], ["c3"]),
             helper.make_node("Flatten", ["c3"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w4", "b4"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], init)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _compile(path, calib, wide):
    g = load_model(path, None, {}, [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantise(g, calib, sqnr=False, int16_tensors=wide)
    arch = load_arch("npu-s")
    return g, CompiledModel(lower_program(q.graph, arch, CompileOptions(), {}), arch, q.graph)


def test_forced_wide_layers_run_16x8_on_the_npu(tmp_path):
    path = tmp_path / "net.onnx"
    conv_net(path)
    rng = np.random.default_rng(1)
    calib = {"x": rng.normal(0, 1, (16, 1, 3, 10, 10)).astype(np.float32)}
    g, base = _compile(path, calib, ())
    dw = next(n for n in g.nodes if n.op is Op.CONV2D and n.attrs.depthwise)
    fc = next(n for n in g.nodes if n.op is Op.FULLY_CONNECTED)
    _, cm = _compile(path, calib, (dw.outputs[0], fc.outputs[0]))
    qg = cm.qgraph
    mxu = [n for n in qg.nodes if n.op in (Op.CONV2D, Op.FULLY_CONNECTED)]
    types = [{qg.tensors[n.inputs[0]].dtype, qg.tensors[n.outputs[0]].dtype} for n in mxu]
    assert types == [{DType.I8}, {DType.I16}, {DType.I16}, {DType.I16}]     # conv, depthwise, 1x1, fc
    requants = [(qg.tensors[n.inputs[0]].dtype, qg.tensors[n.outputs[0]].dtype) for n in qg.nodes if n.op is Op.QUANTIZE]
    assert sorted(requants, key=str) == sorted([(DType.I8, DType.I16), (DType.I16, DType.I8), (DType.I8, DType.I16)],
                                               key=str)
    assert cm.profile().host_ops == []
    errs = []
    for _ in range(4):
        x = rng.normal(0, 1, (1, 3, 10, 10)).astype(np.float32)
        q = quantize_inputs(qg, {"x": x})
        want = run_reference(qg, q)["y"]
        np.testing.assert_array_equal(cm.run_int(q)["y"], want)
        f = run_float(g, {"x": x})["y"].astype(np.float64)
        y = qg.tensors["y"].quant
        assert y.zp == 0 and qg.tensors["y"].dtype is DType.I16
        b = base.qgraph.tensors["y"].quant
        base_out = base.run_int(quantize_inputs(base.qgraph, {"x": x}))["y"]
        wide_err = np.abs(want * y.s - f).max()
        base_err = np.abs((base_out.astype(np.float64) - b.zp) * b.s - f).max()
        errs.append((wide_err, base_err))
        # what is left comes from the int8 conv before: a few int8 steps of the output's range
        assert wide_err <= 3 * b.s, errs
    assert sum(e[0] for e in errs) < sum(e[1] for e in errs), errs


def test_noise_driven_widening_reaches_convolutions(tmp_path):
    """`int16_below_db` widens noisy conv outputs read by convs: every conv runs 16x8 on the
    NPU (no host operator), equal to the integer reference and closer to float than int8."""
    import npukit
    from test_sim_vs_reference import assert_sim_equals_reference
    path = tmp_path / "net.onnx"
    conv_net(path, seed=3)
    rng = np.random.default_rng(2)
    calib = {"x": rng.normal(0, 1, (16, 1, 3, 10, 10)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide = npukit.compile(path, "npu-s", calibration=calib, int16_below_db=80.0, host="never", sqnr=False)
        base = npukit.compile(path, "npu-s", calibration=calib, host="never", sqnr=False)
    qg = wide.qgraph
    convs = [n for n in qg.nodes if n.op is Op.CONV2D]
    assert all(qg.tensors[n.inputs[0]].dtype is DType.I16 for n in convs)
    assert wide.profile().host_ops == []
    feeds = [{"x": rng.normal(0, 1, (1, 3, 10, 10)).astype(np.float32)} for _ in range(3)]
    assert_sim_equals_reference(wide, feeds, check_timing_order=False)
    g = load_model(path, None, {}, [])
    err = {m: sum(float(np.sum((m.run(f)["y"] - run_float(g, f)["y"]) ** 2)) for f in feeds) for m in (wide, base)}
    assert err[wide] < err[base]


def _int16_conv(tmp_path, w: np.ndarray, b: np.ndarray, rng, attrs: dict):
    """A one-conv ONNX model of weights `w` [O, 4, kh, kw] and bias `b` on a [1, 4, 6, 6]
    input, quantised all-int16 (16x8) on 8 normal samples and lowered for npu-s:
    (its path, the integer graph, the compiled model)."""
    from dataclasses import replace
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)], "conv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[0], 6, 6])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    calib = {"x": rng.normal(0, 1, (8, 1, 4, 6, 6)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantise(load_model(path, None, {}, []), calib, sqnr=False,
                      options=replace(CompileOptions(), precision="int16")).graph
    arch = load_arch("npu-s")
    return path, qg, CompiledModel(lower_program(qg, arch, CompileOptions(), {}), arch, qg)


def test_16x8_bias_of_a_near_zero_channel_is_kept(tmp_path):
    """A channel whose weights are all but zero is its bias (a BN-folded channel of a PP-OCR
    detector): at an int16 input scale its int64 bias code passes 2^31 (0.5 / (1e-4 x 8e-10)
    ~ 6e12) and must not be clipped to int32's range as an int8 layer's is. The NPU (int64
    bias in its 16x8 parameter block) equals the integer reference, and both equal
    onnxruntime's float conv within the int8 weights' rounding."""
    import onnxruntime as ort
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (3, 4, 1, 1)).astype(np.float32)
    w[1] = 1e-7
    b = np.array([0.1, 0.5, -0.2], np.float32)
    path, qg, cm = _int16_conv(tmp_path, w, b, rng, {})
    assert qg.tensors["b"].dtype is DType.I64 and np.abs(qg.tensors["b"].data).max() > 2 ** 31
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(0, 1, (1, 4, 6, 6)).astype(np.float32)
    q = quantize_inputs(qg, {"x": x})
    got = run_reference(qg, q)["y"]
    np.testing.assert_array_equal(cm.run_int(q)["y"], got)
    want = sess.run(None, {"x": x})[0]
    s = qg.tensors["y"].quant.s
    err = np.abs(got * s - want)
    assert err[:, 1].max() < 2 * s         # the bias channel: 0.5 (before: clipped to 2^31 codes, ~2e-4)
    # the others: half an int8 weight step per input channel, and the output's and input's rounding
    half_step = np.abs(w).max(axis=(1, 2, 3)) / 127 / 2
    bound = np.abs(x).sum(axis=1, keepdims=True) * half_step[None, :, None, None] + 4 * s
    assert np.all(err <= bound)


def test_16x8_channel_of_near_zero_weights_keeps_its_bias(tmp_path):
    """A 16x8 channel whose weights are all but zero (a BN-folded dead channel: PP-OCRv6's
    detector has 1-31 in each of seven convs) is its bias. At int16's input step its
    multiplier in_s x w_s / out_s falls under 2^-32, which quantize_multiplier flushes to 0
    as LiteRT does (channel 1: the output reads 0, not 0.5), or its int64 bias code passes
    2^46 besides (channel 2). The weight scale is raised to the least that keeps both, as
    TFLite's converter does for an int32 bias (AdjustWeightsForBiasScale): the NPU equals the
    integer reference, and both equal onnxruntime's float conv within the weights' rounding."""
    import onnxruntime as ort
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32)
    w[1] = rng.normal(0, 1e-8, (4, 3, 3))
    w[2] = rng.normal(0, 1e-13, (4, 3, 3))
    b = np.array([0.1, 0.5, -0.7, 0.2], np.float32)
    path, qg, cm = _int16_conv(tmp_path, w, b, rng, {"pads": [1, 1, 1, 1]})
    x_s, y_s = qg.tensors["x"].quant.s, qg.tensors["y"].quant.s
    assert qg.tensors["x"].dtype is DType.I16 and qg.tensors["b"].dtype is DType.I64
    # the case: at max |w| / 127 channel 1's multiplier is under 2^-32, channel 2's bias code past 2^46
    assert np.abs(w[1]).max() / 127 * x_s / y_s < 2.0 ** -32 and np.abs(w[2]).max() / 127 * x_s / y_s < 2.0 ** -32
    assert 0.7 / (x_s * np.abs(w[2]).max() / 127) > 2 ** 46
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(0, 1, (1, 4, 6, 6)).astype(np.float32)
    q = quantize_inputs(qg, {"x": x})
    got = run_reference(qg, q)["y"]
    np.testing.assert_array_equal(cm.run_int(q)["y"], got)
    err = np.abs(got * y_s - sess.run(None, {"x": x})[0])
    assert err[:, 1:3].max() < 2 * y_s        # the dead channels read their bias (before: 0)
    half_step = np.abs(w).max(axis=(1, 2, 3)) / 127 / 2
    taps = np.abs(x).sum() * 9 / 6 / 6 * 4        # generous: every tap of the 3 x 3 window
    assert np.all(err[:, [0, 3]] <= taps * half_step[[0, 3], None, None] + 4 * y_s)
