"""One `npukit.Reuse` shared by the compiles of a model at several token counts and arches:
each program byte-identical to the one compiled alone (the oracle), with weight blocks
encoded once across them and each dense layer's weights quantised once (the token count
changes no key); anything else passed as `reuse` is refused."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.api import CompiledModel
from npukit.arch import load_arch
from npukit.codegen.reuse import Reuse
from npukit.compiler import compile_graph
from npukit.errors import InputError
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op
from npukit.isa import wcodec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_scales import _tokens  # noqa: E402
from test_wide_graph import feed_forward_graph  # noqa: E402

ARCHES = [load_arch("npu-m"), load_arch("npu-s")]


def _model(g, arch, reuse=None, **how) -> CompiledModel:
    chose: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, sqnr=False, chose=chose, reuse=reuse, **how)
    return CompiledModel(prog, arch, qg, scales=chose[0])


def test_shared_reuse_gives_the_programs_compiled_alone():
    rng = np.random.default_rng(3)
    g = feed_forward_graph(rng)
    first = _model(g, ARCHES[0], calibration={"x": rng.standard_normal((6, 1, 6, 32)).astype(np.float32)})
    reuse = Reuse()
    calls = {"alone": 0, "shared": 0}
    real, real_size = wcodec.encode_many, wcodec.encoded_size      # wcodec.encode encodes through encode_many

    def counted(who):
        def encode_many(raws):
            calls[who] += len(raws)
            return real(raws)

        def encoded_size(raw):
            calls[who] += 1
            return real_size(raw)
        wcodec.encode_many, wcodec.encoded_size = encode_many, encoded_size     # type: ignore[assignment]
    try:
        for n in (5, 9, 5):
            gn = _tokens(g, n)
            counted("alone")
            alone = _model(gn, ARCHES[0], scales=first.scales)
            alone_s = alone.for_arch(ARCHES[1])
            counted("shared")
            shared = _model(gn, ARCHES[0], reuse, scales=first.scales)
            shared_s = shared.for_arch(ARCHES[1], reuse=reuse)
            assert shared.to_bytes() == alone.to_bytes() and shared_s.to_bytes() == alone_s.to_bytes()
    finally:
        wcodec.encode_many, wcodec.encoded_size = real, real_size        # type: ignore[assignment]
    assert any(getattr(ins, "codec", 0) for ins in shared.program.instructions)     # blocks are compressed
    # with `reuse` each distinct block and weight tensor is encoded once (the ratio estimate
    # sizes a sample of the tensor's stream); alone, every compile encodes all of them again
    assert calls["shared"] == len(reuse.streams) + len(reuse.ratios)
    assert calls["alone"] > calls["shared"]
    dense = [nd for nd in g.nodes if nd.op in (Op.FULLY_CONNECTED, Op.CONV2D)]
    assert dense and len(reuse.quantised) == len(dense)


def test_reuse_must_be_a_reuse():
    with pytest.raises(InputError, match="reuse must be an npukit.Reuse"):
        npukit.compile("model.onnx", reuse={})


def _token_model() -> bytes:
    """Token ids -> an int8 embedding table (Cast and Mul, folded on import) plus position rows
    picked by Range(0, token count), bound mask arithmetic, a dense layer of int8 weights."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.integers(-127, 128, (50, 16)).astype(np.int8), "table_q"),
             numpy_helper.from_array(np.float32(0.02), "table_s"),
             numpy_helper.from_array(rng.standard_normal((32, 16)).astype(np.float32), "positions"),
             numpy_helper.from_array(rng.integers(-127, 128, (16, 16)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.full(16, 0.01, np.float32), "w_s"),
             numpy_helper.from_array(np.int64(0), "zero"), numpy_helper.from_array(np.int64(1), "one"),
             numpy_helper.from_array(np.array([2], np.int64), "axis2")]
    nodes = [helper.make_node("Cast", ["table_q"], ["table_f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["table_f", "table_s"], ["table"]),
             helper.make_node("Gather", ["table", "input_ids"], ["tok"]),
             helper.make_node("Shape", ["input_ids"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["count"]),
             helper.make_node("Range", ["zero", "count", "one"], ["pos_ids"]),
             helper.make_node("Gather", ["positions", "pos_ids"], ["pos"]),
             helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask"]),   # [1, n, 1]: all ones, bound
             helper.make_node("Add", ["tok", "pos"], ["emb"]),
             helper.make_node("Mul", ["emb", "mask"], ["masked"]),
             helper.make_node("Cast", ["w_q"], ["w_f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["w_f", "w_s"], ["w"]),
             helper.make_node("MatMul", ["masked", "w"], ["y"])]
    ins = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "n"]),
           helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "n"])]
    graph = helper.make_graph(nodes, "tokens", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_shared_reuse_imports_the_file_once(tmp_path):
    """An ONNX file compiled at several token counts with one Reuse: each import equals the one
    made alone (graph and constants), each program its bytes alone; what the file alone fixes
    is kept across the imports, what the token count changes is not."""
    path = tmp_path / "tokens.onnx"
    path.write_bytes(_token_model())

    def how(n):
        return dict(input_shapes={"input_ids": (1, n)}, sqnr=False,
                    input_values={"attention_mask": np.ones((1, n), np.int64)})
    rng = np.random.default_rng(6)
    calib = {"input_ids": rng.integers(0, 50, (4, 1, 7)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = npukit.compile(path, "npu-s", calibration=calib, **how(7))
        reuse = Reuse()
        for n in (5, 9, 5):
            alone = npukit.compile(path, "npu-s", scales=first.scales, **how(n))
            shared = npukit.compile(path, "npu-s", scales=first.scales, reuse=reuse, **how(n))
            assert shared.to_bytes() == alone.to_bytes()
            bound = {"attention_mask": np.ones((1, n), np.int64)}
            a = load_onnx(path, {"input_ids": (1, n)}, bound)
            b = load_onnx(path, {"input_ids": (1, n)}, bound, memo=reuse.imported)
            assert a.nodes == b.nodes and a.tensors == b.tensors
            assert all(np.array_equal(t.data, b.tensors[k].data) for k, t in a.tensors.items() if t.is_const)
    (entry,) = reuse.imported.values()
    assert {"table", "w"} <= entry["static"].keys()
    assert not {"count", "pos_ids", "pos", "mask_f", "mask"} & entry["static"].keys()
