"""Masks and token ids the NPU moves as they are (a GRU seq2seq's encoder and decoder): a
bool mask Cast to float (a masked sum's weights) is a WHERE of 1.0 and 0.0, a Cast of a bool
to bool is nothing, and integer ids picked by a constant index (the decoder's last token)
are a SLICE feeding the embedding's Gather; all on the NPU, against onnxruntime."""
from __future__ import annotations

import warnings

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import onnxruntime_outputs

import npukit

L, D, V = 6, 8, 20


def _model() -> bytes:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((V, D)).astype(np.float32)
    nodes = [helper.make_node("Cast", ["mask"], ["m_bool"], to=TensorProto.BOOL),
             helper.make_node("Cast", ["m_bool"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["m", "ax2"], ["m3"]),
             helper.make_node("Mul", ["x", "m3"], ["xm"]),
             helper.make_node("ReduceSum", ["xm", "ax1"], ["s"], keepdims=0),
             helper.make_node("Gather", ["ids", "last"], ["tok"], axis=1),
             helper.make_node("Gather", ["table", "tok"], ["emb"]),
             helper.make_node("Add", ["s", "emb"], ["y"])]
    graph = helper.make_graph(
        nodes, "mask_ids",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, L, D]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, [1, L]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([2], np.int64), "ax2"),
         numpy_helper.from_array(np.array([1], np.int64), "ax1"), numpy_helper.from_array(np.array(3, np.int64), "last")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def _sample(rng):
    n = int(rng.integers(2, L + 1))
    mask = np.zeros((1, L), bool)
    mask[0, :n] = True
    return {"x": rng.uniform(-1, 1, (1, L, D)).astype(np.float32), "mask": mask,
            "ids": rng.integers(0, V, (1, 4)).astype(np.int64)}


def test_masked_sum_and_last_token_on_the_npu(tmp_path):
    mb = _model()
    path = tmp_path / "mask_ids.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(1)
    samples = [_sample(rng) for _ in range(10)]
    calib = {k: np.stack([s[k] for s in samples[:8]]) for k in samples[0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration=calib, sqnr=False)
    assert not prog.profile().host_ops
    from npukit.frontend.onnx import load_onnx
    from npukit.kernels.float_exec import run_float
    g = load_onnx(mb)
    for s in samples[8:]:
        want = onnxruntime_outputs(mb, s)["y"]
        np.testing.assert_allclose(run_float(g, {**s, "ids": s["ids"].astype(np.int32)})["y"], want, atol=1e-5)
        want = onnxruntime_outputs(mb, s)["y"]
        got = prog.run(s)["y"]
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 4 * prog.program.outputs[0].scale     # the masked sum, the add
