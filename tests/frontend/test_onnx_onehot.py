"""One-hot matrix products (MatMul(Cast(Equal(ids, arange K)), W), as jax2tf exports
`jax.nn.one_hot(ids, K) @ W`) import as a GATHER of W's rows by the ids, with the ids'
reshapes on the NPU: small generated models against onnxruntime, 0 host layers, the
simulator equal to the integer reference. An id outside [0, K), a zero row to onnxruntime,
is the GATHER's one-line IndexRangeError (onnx_onehot.py)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.errors import IndexRangeError
from npukit.frontend.onnx import load_onnx
from npukit.frontend.onnx_onehot import gather_one_hots
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float
from npukit.sim.reference import run_reference

K, N, L = 20, 8, 6


def one_hot_model(unsqueeze: bool = False, expand: tuple[int, ...] | None = (1, L, K), ids_type=TensorProto.INT32,
                  arange: np.ndarray | None = None, arange_first: bool = False) -> bytes:
    """ids [1, L] -> [1, L, 1] (Reshape or Unsqueeze) -> [Expand] -> Equal arange(K) -> Cast
    float -> MatMul W [K, N] -> + b -> y."""
    rng = np.random.default_rng(0)
    c = np.arange(K, dtype=np.int32 if ids_type == TensorProto.INT32 else np.int64) if arange is None else arange
    inits = {"W": rng.standard_normal((K, N)).astype(np.float32), "b": rng.standard_normal(N).astype(np.float32),
             "C": c.reshape(1, 1, K), "shape3": np.array([1, L, 1], np.int64), "axes": np.array([-1], np.int64)}
    nodes = [helper.make_node("Unsqueeze", ["ids", "axes"], ["x"]) if unsqueeze else
             helper.make_node("Reshape", ["ids", "shape3"], ["x"])]
    if expand is not None:
        inits["eshape"] = np.array(expand, np.int64)
        nodes.append(helper.make_node("Expand", ["x", "eshape"], ["xe"]))
    x = "xe" if expand is not None else "x"
    nodes += [helper.make_node("Equal", ["C", x] if arange_first else [x, "C"], ["eq"]),
              helper.make_node("Cast", ["eq"], ["oh"], to=TensorProto.FLOAT),
              helper.make_node("MatMul", ["oh", "W"], ["mm"]),
              helper.make_node("Add", ["mm", "b"], ["y"])]
    g = helper.make_graph(nodes, "one_hot", [helper.make_tensor_value_info("ids", ids_type, [1, L])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def _ort(mb: bytes, ids: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(mb, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


def _ids(seed: int, dtype, low: int = 0, high: int = K) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, (1, L)).astype(dtype)


@pytest.mark.parametrize("variant", [
    dict(), dict(unsqueeze=True), dict(expand=None), dict(arange_first=True),
    dict(ids_type=TensorProto.INT64, unsqueeze=True, expand=None),
    dict(expand=(3, L, K))])          # the Expand broadcasts a leading axis too: so do the rows
def test_one_hot_matmul_is_a_gather_equal_to_onnxruntime(variant):
    mb = one_hot_model(**variant)
    dtype = np.int64 if variant.get("ids_type") == TensorProto.INT64 else np.int32
    g = load_onnx(mb)
    ops = [n.op for n in g.nodes]
    assert Op.GATHER in ops and Op.MATMUL not in ops and Op.HOST_FLOAT not in ops, ops
    for seed in range(3):
        ids = _ids(seed, dtype)
        want = _ort(mb, ids)
        got = run_float(g, {"ids": ids})["y"]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_compiled_one_hot_runs_on_the_npu_equal_to_reference_and_onnxruntime(tmp_path):
    path = tmp_path / "one_hot.onnx"
    path.write_bytes(one_hot_model())
    calib = {"ids": np.stack([_ids(s, np.int32) for s in range(8)])}
    m = npukit.compile(path, "npu-s", calibration=calib, sqnr=False)
    assert [la.target for la in m.program.layers].count("host") == 0
    w = numpy_helper.to_array(next(i for i in onnx.load(path).graph.initializer if i.name == "W"))
    for seed in range(10, 13):
        ids = _ids(seed, np.int32)
        got_int = m.run_int({"ids": ids})
        want_int = run_reference(m.qgraph, {"ids": ids})
        for name in want_int:
            np.testing.assert_array_equal(got_int[name], want_int[name])
        got = m.run({"ids": ids})["y"]          # int8 rows and bias: within a few LSBs of float
        assert np.abs(got - _ort(path.read_bytes(), ids)).max() <= 4 * (np.abs(w).max() + 3) / 127


@pytest.mark.parametrize("bad", [K, -1])
def test_id_outside_the_one_hot_is_an_index_error_not_a_zero_row(tmp_path, bad):
    mb = one_hot_model()
    ids = _ids(0, np.int32)
    ids[0, 2] = bad
    b = numpy_helper.to_array(next(i for i in onnx.load_model_from_string(mb).graph.initializer if i.name == "b"))
    np.testing.assert_allclose(_ort(mb, ids)[0, 2], b, rtol=1e-6)   # onnxruntime: a zero row (+ b)
    with pytest.raises(IndexRangeError):
        run_float(load_onnx(mb), {"ids": ids})
    path = tmp_path / "one_hot.onnx"
    path.write_bytes(mb)
    m = npukit.compile(path, "npu-s", calibration={"ids": np.stack([_ids(s, np.int32) for s in range(4)])},
                       sqnr=False)
    with pytest.raises(IndexRangeError) as ref:
        run_reference(m.qgraph, {"ids": ids})
    with pytest.raises(IndexRangeError) as sim:
        m.run_int({"ids": ids})
    assert str(sim.value) == str(ref.value) and "\n" not in str(sim.value)


def test_equal_to_other_than_arange_stays_a_one_hot_product():
    """A constant that is not arange(K) (reversed here) is not a row lookup: not rewritten,
    and still onnxruntime's result."""
    mb = one_hot_model(arange=np.arange(K, dtype=np.int32)[::-1].copy())
    g = load_onnx(mb)
    assert Op.GATHER not in [n.op for n in g.nodes]
    ids = _ids(1, np.int32)
    np.testing.assert_allclose(run_float(g, {"ids": ids})["y"], _ort(mb, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ids_type", [TensorProto.INT32, TensorProto.INT64])
def test_integer_ids_reshaped_on_the_npu_keep_their_onnx_type(tmp_path, ids_type):
    """ids -> Reshape (NPU) -> Gather (NPU), and -> Cast float (host, reading the ids in their
    ONNX type), and -> Flatten -> graph output z (int64 ids are held as int32 on the NPU: that
    output is reshaped on the host, keeping its int64): onnxruntime's results and types."""
    nodes = [helper.make_node("Reshape", ["ids", "s"], ["r"]),
             helper.make_node("Gather", ["T", "r"], ["e"], axis=0),
             helper.make_node("Cast", ["r"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["f", "ax"], ["fu"]),
             helper.make_node("Add", ["e", "fu"], ["y"]),
             helper.make_node("Flatten", ["ids"], ["z"], axis=0)]
    t = np.random.default_rng(2).standard_normal((K, N)).astype(np.float32)
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("ids", ids_type, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("z", ids_type, None)],
                          [numpy_helper.from_array(t, "T"), numpy_helper.from_array(np.array([6], np.int64), "s"),
                           numpy_helper.from_array(np.array([-1], np.int64), "ax")])
    path = tmp_path / "ids.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    dtype = helper.tensor_dtype_to_np_dtype(ids_type)
    ir = load_onnx(path.read_bytes())
    assert [n.op for n in ir.nodes][:2] == [Op.RESHAPE, Op.GATHER]
    m = npukit.compile(path, "npu-s", calibration={"ids": (np.arange(24).reshape(4, 2, 3) % K).astype(dtype)},
                       sqnr=False)
    hosted = [la for la in m.program.layers if la.target == "host"]
    assert len(hosted) == (1 if ids_type == TensorProto.INT32 else 2)      # the Cast; the int64 Flatten
    ids = np.array([[3, 0, 19], [7, 7, 1]], dtype)
    want = dict(zip(("y", "z"), ort.InferenceSession(str(path)).run(None, {"ids": ids})))
    np.testing.assert_allclose(run_float(ir, {"ids": ids})["y"], want["y"], rtol=1e-6, atol=1e-6)
    got = m.run({"ids": ids})
    assert got["z"].dtype == want["z"].dtype
    np.testing.assert_array_equal(got["z"], want["z"])
    assert np.abs(got["y"] - want["y"]).max() <= 4 * (np.abs(t).max() + K) / 127


def one_hot_op_model(gemm: bool, ids_type=TensorProto.INT64) -> bytes:
    """ids [L] -> OneHot(K, [0, 1]) -> MatMul W [K, N], or Gemm(alpha 0.5, W^T stored [N, K],
    beta 2 * c) -> y."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((N, K) if gemm else (K, N)).astype(np.float32)
    inits = {"W": w, "depth": np.array([K], np.int64), "values": np.array([0, 1], np.float32),
             "c": rng.standard_normal(N).astype(np.float32)}
    nodes = [helper.make_node("OneHot", ["ids", "depth", "values"], ["oh"], axis=-1),
             helper.make_node("Gemm", ["oh", "W", "c"], ["y"], alpha=0.5, beta=2.0, transB=1) if gemm else
             helper.make_node("MatMul", ["oh", "W"], ["y"])]
    g = helper.make_graph(nodes, "one_hot_op", [helper.make_tensor_value_info("ids", ids_type, [L])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("gemm", [False, True])
def test_one_hot_operator_times_matmul_or_gemm_is_a_gather(gemm):
    mb = one_hot_op_model(gemm)
    g = load_onnx(mb)
    ops = [n.op for n in g.nodes]
    assert Op.GATHER in ops and Op.HOST_FLOAT not in ops and Op.FULLY_CONNECTED not in ops, ops
    for seed in range(3):
        ids = _ids(seed, np.int64)[0]
        np.testing.assert_allclose(run_float(g, {"ids": ids})["y"], _ort(mb, ids), rtol=1e-5, atol=1e-5)
    ids = _ids(0, np.int64)[0]
    ids[1] = -1         # OneHot wraps it to K - 1; the GATHER refuses it
    want = _ort(mb, ids)
    np.testing.assert_allclose(want[1], _ort(mb, np.full(L, K - 1, np.int64))[1], rtol=1e-6)
    with pytest.raises(IndexRangeError):
        run_float(g, {"ids": ids})


def test_one_hot_of_float_ids_is_not_rewritten():
    """OneHot also takes float ids (truncated); a Gather would not: the model stays as it was."""
    model = onnx.load_model_from_string(one_hot_op_model(False, TensorProto.FLOAT))
    assert gather_one_hots(model) is model
    model = onnx.load_model_from_string(one_hot_op_model(False))
    assert [n.op_type for n in gather_one_hots(model).graph.node] == ["Gather"]
