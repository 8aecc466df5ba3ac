"""onnxruntime's `quantize_dynamic` quantises an embedding table to int8 / uint8 and dequantises
the rows it gathers: DequantizeLinear(Gather(table_q, ids)), sometimes after a Transpose of the
gathered int8 rows (text2tashkeel's LSTM input). It imports as a Gather of the dequantised
table, then the same reshapes, and compiles with every layer on the NPU; the oracle is
onnxruntime running the quantised model itself."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import onnxruntime_outputs

import npukit
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.kernels.float_exec import run_float

VOCAB, DIM, T = 30, 8, 6


def _model(table_type: type, zp: int, transpose: bool) -> bytes:
    rng = np.random.default_rng(1)
    lo, hi = np.iinfo(table_type).min, np.iinfo(table_type).max
    inits = {"table": rng.integers(lo, hi + 1, (VOCAB, DIM)).astype(table_type),
             "scale": np.array(0.02, np.float32), "zp": np.array(zp, table_type),
             "w": rng.standard_normal((DIM, 5)).astype(np.float32) * 0.3}
    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows_q"])]
    if transpose:           # [1, T, DIM] -> [T, 1, DIM], as before an LSTM
        nodes.append(helper.make_node("Transpose", ["rows_q"], ["rows_t"], perm=[1, 0, 2]))
    nodes += [helper.make_node("DequantizeLinear", ["rows_t" if transpose else "rows_q", "scale", "zp"], ["rows"]),
              helper.make_node("MatMul", ["rows", "w"], ["y"])]
    graph = helper.make_graph(nodes, "emb", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, T])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def test_a_quantised_embedding_imports_as_the_float_table_exactly():
    ids = np.random.default_rng(2).integers(0, VOCAB, (1, T)).astype(np.int64)
    for table_type, zp, transpose in ((np.int8, 0, False), (np.uint8, 128, True), (np.uint8, 3, False)):
        mb = _model(table_type, zp, transpose)
        g = load_onnx(mb)
        assert not any(n.op == Op.HOST_FLOAT for n in g.nodes)
        want = onnxruntime_outputs(mb, {"ids": ids})["y"]
        np.testing.assert_allclose(run_float(g, {"ids": ids})["y"], want, rtol=1e-5, atol=1e-5)


def test_a_quantised_embedding_compiles_on_the_npu(tmp_path):
    mb = _model(np.uint8, 128, True)
    (tmp_path / "m.onnx").write_bytes(mb)
    rng = np.random.default_rng(3)
    calib = {"ids": rng.integers(0, VOCAB, (8, 1, T)).astype(np.int64)}
    prog = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration=calib, sqnr=False)
    assert {la.target for la in prog.program.layers} == {"npu"}
    ids = rng.integers(0, VOCAB, (1, T)).astype(np.int64)
    want, got = onnxruntime_outputs(mb, {"ids": ids})["y"], prog.run({"ids": ids})["y"]
    assert got.shape == want.shape
    # rows of |x| <= 2.56 (int8 step 0.02) through an 8-term product: a few output steps
    np.testing.assert_allclose(got, want, atol=0.1 * np.abs(want).max())
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.995
