"""onnxruntime's dynamic int8 models (com.microsoft DynamicQuantizeLSTM, DynamicQuantizeLinear ->
ConvInteger / MatMulInteger) imported as the float models they quantise. The oracle is
onnxruntime running the quantised model itself: it quantises activations per input (X and h
of each step to uint8), which the dequantised float model does not, so the float path is
within a stated tolerance of it, not equal. Weights stay within 7 bits (onnxruntime's
`reduce_range`): its uint8 x int8 kernels on x86 CPUs without VNNI add pairs of products in
saturating int16, which full-range weights overflow."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import onnxruntime_outputs

import npukit
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float

RNG = np.random.default_rng(3)
H, IN, STEPS = 8, 6, 5


def _dq_lstm_model() -> bytes:
    """X [5, 1, 6] -> bidirectional DynamicQuantizeLSTM (W scaled per gate column,
    R per direction) with initial states -> Y, Y_h."""
    w = RNG.integers(-64, 64, (2, IN, 4 * H)).astype(np.int8)
    r = RNG.integers(-64, 64, (2, H, 4 * H)).astype(np.int8)
    inits = {"w": w, "r": r, "b": RNG.standard_normal((2, 8 * H)).astype(np.float32) * 0.2,
             "h0": RNG.standard_normal((2, 1, H)).astype(np.float32) * 0.5,
             "c0": RNG.standard_normal((2, 1, H)).astype(np.float32) * 0.5,
             "ws": (RNG.uniform(0.5, 1.5, (2, 4 * H)) / 150).astype(np.float32),
             "wz": np.zeros((2, 4 * H), np.int8),      # onnxruntime takes zero points of 0 only
             "rs": np.array([1 / 125, 1 / 200], np.float32), "rz": np.zeros(2, np.int8)}
    node = helper.make_node("DynamicQuantizeLSTM", ["x", "w", "r", "b", "", "h0", "c0", "", "ws", "wz", "rs", "rz"],
                            ["y", "yh"], name="qlstm", domain="com.microsoft", hidden_size=H,
                            direction="bidirectional")
    graph = helper.make_graph([node], "dq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [STEPS, 1, IN])],
                              [helper.make_empty_tensor_value_info("y"), helper.make_empty_tensor_value_info("yh")],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8).SerializeToString()


def test_dynamic_quantize_lstm_imports_as_a_standard_lstm_close_to_onnxruntime():
    mb = _dq_lstm_model()
    g = load_onnx(mb)
    # a plain bidirectional ONNX LSTM, the com.microsoft op gone: one IR LSTM per direction
    assert [n.attrs.reverse for n in g.nodes if n.op is Op.LSTM] == [False, True]
    assert not [n for n in g.nodes if n.op is Op.HOST_FLOAT]
    worst = 0.0
    for seed in range(4):
        x = np.random.default_rng(seed).standard_normal((STEPS, 1, IN)).astype(np.float32)
        want, got = onnxruntime_outputs(mb, {"x": x}), run_float(g, {"x": x})
        for name in ("y", "yh"):
            assert got[name].shape == want[name].shape
            worst = max(worst, float(np.abs(got[name] - want[name]).max()))
    # onnxruntime's uint8 X and h move outputs by < 0.003 here; a misread weight layout,
    # scale axis or gate order moves them by ~0.1-1
    assert worst < 0.01, worst


def _quantize_dynamic(tmp_path) -> bytes:
    """Conv -> Relu -> bidirectional LSTM over the columns -> MatMul, through onnxruntime's
    own quantize_dynamic (ConvInteger, DynamicQuantizeLSTM, MatMulInteger)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    inits = {"cw": RNG.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.5,
             "cb": RNG.standard_normal(4).astype(np.float32) * 0.1,
             "w": RNG.standard_normal((2, 4 * H, 16)).astype(np.float32) * 0.3,
             "r": RNG.standard_normal((2, 4 * H, H)).astype(np.float32) * 0.3,
             "b": RNG.standard_normal((2, 8 * H)).astype(np.float32) * 0.1,
             "fc": RNG.standard_normal((2 * H, 5)).astype(np.float32) * 0.3,
             "seq_shape": np.array([6, 1, 16], np.int64), "feat_shape": np.array([6, 2 * H], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["rl"]),
             helper.make_node("Transpose", ["rl"], ["t"], perm=[3, 0, 1, 2]),
             helper.make_node("Reshape", ["t", "seq_shape"], ["seq"]),
             helper.make_node("LSTM", ["seq", "w", "r", "b"], ["y"], hidden_size=H, direction="bidirectional"),
             helper.make_node("Transpose", ["y"], ["yt"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["yt", "feat_shape"], ["feat"]),
             helper.make_node("MatMul", ["feat", "fc"], ["out"])]
    graph = helper.make_graph(nodes, "f", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 6])],
                              [helper.make_empty_tensor_value_info("out")],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), tmp_path / "f.onnx")
    quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx", weight_type=QuantType.QInt8, reduce_range=True)
    return (tmp_path / "q.onnx").read_bytes()


def test_quantize_dynamic_model_runs_conv_lstm_and_matmul_on_the_npu(tmp_path):
    mb = _quantize_dynamic(tmp_path)
    ops = {n.op_type for n in onnx.load_model_from_string(mb).graph.node}
    assert {"ConvInteger", "DynamicQuantizeLSTM", "MatMulInteger"} <= ops
    xs = [np.abs(np.random.default_rng(s).standard_normal((1, 1, 4, 6))).astype(np.float32) for s in range(33)]
    g = load_onnx(mb)
    assert [n.op for n in g.nodes if n.op in (Op.LSTM, Op.HOST_FLOAT)] == [Op.LSTM, Op.LSTM]
    for x in xs[:4]:        # float path: within onnxruntime's own dynamic quantisation of it
        want, got = onnxruntime_outputs(mb, {"x": x})["out"], run_float(g, {"x": x})["out"]
        assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
    (tmp_path / "m.onnx").write_bytes(mb)
    prog = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration={"x": np.stack(xs[1:])})
    assert prog.profile().host_ops == []
    assert {la.op for la in prog.program.layers if la.target == "npu"} >= {"conv2d", "fully_connected", "lstm"}
    x = xs[0]
    want, got = onnxruntime_outputs(mb, {"x": x})["out"], prog.run({"x": x})["out"]
    cos = float(got.ravel() @ want.ravel() / (np.linalg.norm(got) * np.linalg.norm(want)))
    assert cos > 0.99, cos


def test_dynamic_quantize_matmul_imports_as_matmul_and_bias():
    """com.microsoft DynamicQuantizeMatMul, B scaled per column with a bias: MatMul + Add."""
    b = RNG.integers(-64, 64, (12, 5)).astype(np.int8)
    inits = {"b": b, "bs": (RNG.uniform(0.5, 1.5, 5) / 50).astype(np.float32), "bz": np.zeros(5, np.int8),
             "bias": RNG.standard_normal(5).astype(np.float32)}
    node = helper.make_node("DynamicQuantizeMatMul", ["a", "b", "bs", "bz", "bias"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node], "dqmm", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [3, 12])],
                              [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    mb = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                           ir_version=8).SerializeToString()
    g = load_onnx(mb)
    assert [n.op for n in g.nodes] == [Op.FULLY_CONNECTED, Op.ADD]     # the NPU's, no host node
    a = np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)
    want, got = onnxruntime_outputs(mb, {"a": a})["y"], run_float(g, {"a": a})["y"]
    # onnxruntime quantises A to uint8 (a step of range / 255): products move by < 1% of their
    # largest (0.6% here); a wrong scale axis or a dropped bias by far more
    assert np.abs(got - want).max() < 0.02 * np.abs(want).max()
