"""The ONNX input boundary: malformed or oversized models are refused with one clear line,
before any large read or allocation (issue 17)."""
from __future__ import annotations

import builtins

import numpy as np
import onnx
import pytest
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import map_fn_model, model_bytes, node

import npukit
from npukit.errors import ModelError
from npukit.frontend import onnx_check
from npukit.frontend.onnx import load_onnx
from npukit.testing.fixtures import run_cli

X = {"x": (1, 4, 8, 8)}
W = {"w": np.ones((4, 4, 3, 3), np.float32)}


def _model(nodes, inputs, inits, ir_version=8) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                          for n, s in inputs.items()],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=ir_version)


def _refused(mb, *patterns: str, error=ModelError, **kw) -> str:
    with pytest.raises(error) as info:
        load_onnx(mb, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    for p in patterns:
        assert p in msg, msg
    return msg


def _external(tmp_path, tensors: list[tuple[str, list[int], dict]], data_size: int) -> str:
    """A model adding external float tensors to x; their data file is sparse (`data_size` bytes)."""
    with open(tmp_path / "w.bin", "wb") as f:
        f.truncate(data_size)
    inits, nodes, prev = [], [], "x"
    for i, (name, dims, entry) in enumerate(tensors):
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims, data_location=TensorProto.EXTERNAL)
        for k, v in {"location": "w.bin", **entry}.items():
            t.external_data.add(key=k, value=str(v))
        inits.append(t)
        out = "y" if i == len(tensors) - 1 else f"a{i}"
        nodes.append(node("Add", [prev, name], [out]))
        prev = out
    path = tmp_path / "m.onnx"
    path.write_bytes(_model(nodes, {"x": (1,)}, inits).SerializeToString())
    return str(path)


def test_external_data_beyond_model_bytes_is_refused_before_reading(tmp_path, monkeypatch):
    part = 1 << 28      # nine 256-MiB tensors: each within max_tensor_elements, together beyond max_model_bytes
    path = _external(tmp_path, [(f"w{i}", [part // 4], {"offset": i * part, "length": part}) for i in range(9)],
                     9 * part)
    real_open = builtins.open

    def no_data_reads(file, *args, **kw):
        assert not str(file).endswith("w.bin"), "external data read before it was checked"
        return real_open(file, *args, **kw)

    monkeypatch.setattr(onnx_check, "open", no_data_reads, raising=False)
    _refused(path, "max_model_bytes", "external data")


def test_external_tensor_declaring_gigabytes_is_refused(tmp_path):
    path = _external(tmp_path, [("w", [6 << 28], {})], 1024)      # 6 GiB of float32
    _refused(path, "initializer 'w'", "max_tensor_elements")


@pytest.mark.parametrize("entry, expect", [
    ({"length": 4096}, "holds 1,024 bytes"),
    ({"offset": -4, "length": 16}, "must not be negative"),
    ({"location": "../w.bin"}, "outside the model's folder"),
    ({"location": "/etc/passwd"}, "relative to the model's folder"),
    ({"location": "nope.bin"}, "does not exist"),
    ({"length": 8}, "its shape [4] needs 16"),
    ({"offset": "x"}, "must be integers"),
])
def test_external_data_entries_are_checked(tmp_path, entry, expect):
    _refused(_external(tmp_path, [("w", [4], entry)], 1024), expect)


def test_external_data_within_bounds_still_loads(tmp_path):
    path = _external(tmp_path, [("w", [4], {"offset": 64, "length": 16})], 1024)
    (tmp_path / "w.bin").write_bytes(bytes(64) + np.arange(4, dtype=np.float32).tobytes() + bytes(944))
    g = load_onnx(path, {"x": (1,)})
    assert any(t.data is not None and t.data.size == 4 and t.data.max() == 3 for t in g.tensors.values())


def test_raw_data_one_byte_short():
    t = numpy_helper.from_array(W["w"], "w")
    t.raw_data = t.raw_data[:-1]
    mb = _model([node("Conv", ["x", "w"], ["y"])], X, [t]).SerializeToString()
    _refused(mb, "initializer 'w'", "575 bytes", "needs 576")


@pytest.mark.parametrize("op, attrs, expect", [
    ("Conv", {"group": 0}, "'group' of ONNX node 'Conv_y' (Conv) must be at least 1"),
    ("Conv", {"group": 3}, "'group' of ONNX node 'Conv_y' (Conv) must be a divisor of the 4 input channels"),
    ("Conv", {"strides": [0, 1]}, "'strides' of ONNX node 'Conv_y' (Conv) must be positive"),
    ("Conv", {"dilations": [1, 0]}, "'dilations'"),
    ("Conv", {"pads": [-1, 0, 0, 0]}, "'pads' of ONNX node 'Conv_y' (Conv) must be non-negative"),
    ("Conv", {"kernel_shape": [5, 5]}, "'kernel_shape' of ONNX node 'Conv_y' (Conv) must be the weight's"),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [1, 0]}, "'strides' of ONNX node 'MaxPool_y' (MaxPool)"),
    ("MaxPool", {"kernel_shape": [0, 2]}, "'kernel_shape' of ONNX node 'MaxPool_y' (MaxPool) must be positive"),
    ("MaxPool", {}, "'kernel_shape' of ONNX node 'MaxPool_y' (MaxPool) must be given"),
    ("AveragePool", {"kernel_shape": [2, 2], "pads": [2, 0, 0, 0]}, "must be smaller than the kernel"),
    ("Transpose", {"perm": [0, 0, 1, 2]}, "'perm' of ONNX node 'Transpose_y' (Transpose) must be a permutation"),
    ("Softmax", {"axis": 7}, "'axis' of ONNX node 'Softmax_y' (Softmax) must be in [-4, 3]"),
    ("Flatten", {"axis": -9}, "'axis' of ONNX node 'Flatten_y' (Flatten) must be in [-4, 4]"),
    ("DepthToSpace", {"blocksize": 0}, "'blocksize'"),
    ("Conv", {"group": [1, 2]}, "'group' of ONNX node 'Conv_y' (Conv) must be of kind INT, not INTS"),
    ("Softmax", {"axis": 1.5}, "'axis' of ONNX node 'Softmax_y' (Softmax) must be of kind INT, not FLOAT"),
])
def test_attribute_ranges(op, attrs, expect):
    ins = ["x", "w"] if op == "Conv" else ["x"]
    _refused(model_bytes([node(op, ins, ["y"], **attrs)], X, ["y"], W if op == "Conv" else None), expect)


def _qdq(scale: float, w_scale: float = 0.1) -> bytes:
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z"),
             numpy_helper.from_array(np.ones((2, 4, 1, 1), np.int8), "wq"),
             numpy_helper.from_array(np.array([w_scale, 0.1], np.float32), "ws"),
             numpy_helper.from_array(np.zeros(2, np.int8), "wz")]
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["xq"]), node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0), node("Conv", ["xd", "w"], ["c"]),
             node("QuantizeLinear", ["c", "s", "z"], ["cq"]), node("DequantizeLinear", ["cq", "s", "z"], ["y"])]
    return _model(nodes, X, inits).SerializeToString()


@pytest.mark.parametrize("scale, w_scale", [(np.nan, 0.1), (np.inf, 0.1), (0.0, 0.1), (-1.0, 0.1),
                                            (0.1, np.nan), (0.1, np.inf), (0.1, 0.0), (0.1, 1e-45)])
def test_quantisation_scales_must_be_finite_and_positive(scale, w_scale):
    load_onnx(_qdq(0.1))
    _refused(_qdq(scale, w_scale), "quantisation scales must be finite positive normal numbers")


def test_dangling_input_and_duplicate_output():
    _refused(model_bytes([node("Relu", ["nope"], ["y"])], {"x": (1, 4)}, ["y"]),
             "ONNX node 'Relu_y' (Relu) reads 'nope', which no earlier node")
    _refused(model_bytes([node("Relu", ["x"], ["y"]), node("Sigmoid", ["x"], ["y"])], {"x": (1, 4)}, ["y"]),
             "ONNX node 'Sigmoid_y' (Sigmoid) defines 'y', which the graph already defines")
    _refused(model_bytes([node("Relu", ["x"], ["r"])], {"x": (1, 4)}, ["y"]), "output 'y' of the graph is never produced")


def test_huge_declared_shapes_are_refused_before_allocation():
    big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[100_000, 100_000])
    _refused(_model([node("Add", ["x", "w"], ["y"])], {"x": (1, 4)}, [big]).SerializeToString(),
             "initializer 'w' (100000x100000) is 10,000,000,000 elements", "max_tensor_elements")
    neg = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1, 4])
    _refused(_model([node("Add", ["x", "w"], ["y"])], {"x": (1, 4)}, [neg]).SerializeToString(), "negative dimension")
    _refused(model_bytes([node("Relu", ["x"], ["y"])], {"x": (100_000, 100_000, 100)}, ["y"]),
             "input 'x'", "max_tensor_elements")
    _refused(model_bytes([node("Relu", ["x"], ["y"])], {"x": (1,) * 12}, ["y"]), "max_tensor_rank")
    _refused(model_bytes([node("Relu", ["x"], ["y"])], {"x": ("n", 4)}, ["y"]), "max_tensor_elements",
             input_shapes={"x": (10**12, 4)})
    shape = {"s": np.array([100_000, 100_000], np.int64)}
    _refused(model_bytes([node("ConstantOfShape", ["s"], ["c"]), node("Add", ["x", "c"], ["y"])], {"x": (1, 4)},
                         ["y"], shape), "ConstantOfShape", "max_tensor_elements")
    _refused(model_bytes([node("Expand", ["x", "s"], ["y"])], {"x": (1, 1)}, ["y"], shape),
             "Expand", "max_tensor_elements")
    _refused(model_bytes([node("Tile", ["c", "r"], ["t"]), node("Add", ["x", "t"], ["y"])], {"x": (1, 4)}, ["y"],
                         {"c": np.ones((1, 4), np.float32), "r": np.array([10**9, 1], np.int64)}),
             "Tile", "max_tensor_elements")


def _loop(trips: int) -> bytes:
    body = helper.make_graph(
        [node("Identity", ["cond"], ["cond_out"]), node("Add", ["v", "one"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 4])])
    inits = [numpy_helper.from_array(np.array(trips, np.int64), "M"), numpy_helper.from_array(np.array(True), "c"),
             numpy_helper.from_array(np.ones((1, 4), np.float32), "one")]
    return _model([node("Loop", ["M", "c", "x"], ["y"], body=body)], {"x": (1, 4)}, inits).SerializeToString()


def test_loop_trip_count_beyond_limit_is_refused_at_compile_time():
    g = load_onnx(_loop(3))
    assert any(n.attrs.op_type == "Loop" for n in g.nodes if hasattr(n.attrs, "op_type"))
    _refused(_loop(10**12), "trip count of ONNX node", "max_host_loop_trips")
    model = onnx.load_model_from_string(_loop(10**12))
    with pytest.raises(ModelError, match="max_host_loop_trips"):
        onnx_check.check_host_graph(model)


def _while_loop(cond_from_value: bool) -> bytes:
    """tf2onnx's while loop: trip count INT64_MAX ("no limit") and a condition the body
    computes: i + 1 < 3 (fixed by the shapes), or sum(v) < 8 (data-dependent); v <- v + 1."""
    cond = [node("ReduceSum", ["v_out"], ["s"], keepdims=0), node("Less", ["s", "eight"], ["cond_out"])] \
        if cond_from_value else [node("Add", ["i", "one_i"], ["i1"]), node("Less", ["i1", "three"], ["cond_out"])]
    body = helper.make_graph(
        [node("Add", ["v", "one"], ["v_out"]), *cond], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.array(1, np.int64), "one_i"), numpy_helper.from_array(np.array(3, np.int64), "three"),
         numpy_helper.from_array(np.array(8.0, np.float32), "eight")])
    inits = [numpy_helper.from_array(np.array(2**63 - 1, np.int64), "M"), numpy_helper.from_array(np.array(True), "c"),
             numpy_helper.from_array(np.ones((1, 4), np.float32), "one")]
    return _model([node("Relu", ["x"], ["r"]), node("Loop", ["M", "c", "r"], ["y"], body=body)], {"x": (1, 4)},
                  inits).SerializeToString()


@pytest.mark.parametrize("cond_from_value", [False, True], ids=["fixed_trips", "data_dependent"])
def test_loop_ending_on_its_condition_is_not_refused(tmp_path, cond_from_value):
    """Trip count INT64_MAX with a condition the body computes: a bound known at run time, not
    refused. With the trips fixed by the shapes the Loop is unrolled at import (all on the
    NPU); with a data-dependent condition it runs on the host, whole; both as onnxruntime."""
    mb = _while_loop(cond_from_value)
    onnx_check.check_host_graph(onnx.load_model_from_string(mb))
    path = tmp_path / "while.onnx"
    path.write_bytes(mb)
    x = np.array([[-1.0, 0.5, 1.0, 2.0]], np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": np.stack([x, x * 0.5])}, sqnr=False)
    want = ort.InferenceSession(mb).run(None, {"x": x})[0]          # relu(x) + trips
    hosted = [h["reason"] for h in prog.profile().host_ops]
    assert hosted == (["ONNX Loop over activations"] if cond_from_value else [])
    np.testing.assert_allclose(prog.run({"x": x})["y"], want, atol=0.05)


def test_map_fn_loop_unrolled_with_stacked_scan_output():
    """tf2onnx's map_fn over a batch of 2: Loop(INT64_MAX, 0 < n) whose body takes row i
    (Gather), scales it and scans it out, i + 1 < n its condition, n the batch from Shape:
    unrolled into two iterations whose scan values are stacked; equal to onnxruntime."""
    mb = map_fn_model([node("Mul", ["row", "w"], ["scan"])],
                      {"w": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)})
    g = load_onnx(mb)
    assert not any(hasattr(n.attrs, "op_type") for n in g.nodes)        # no host node
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    from npukit.kernels.float_exec import run_float
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], ort.InferenceSession(mb).run(None, {"x": x})[0], atol=1e-5)


def test_cli_exit_2_one_line(tmp_path):
    conv = tmp_path / "group0.onnx"
    conv.write_bytes(model_bytes([node("Conv", ["x", "w"], ["y"], group=0)], X, ["y"], W))
    t = numpy_helper.from_array(W["w"], "w")
    t.raw_data = t.raw_data[:-1]
    short = tmp_path / "short.onnx"
    short.write_bytes(_model([node("Conv", ["x", "w"], ["y"])], X, [t]).SerializeToString())
    for args, expect in [(("compile", conv, "-o", tmp_path / "o.npub"), "'group'"), (("info", short), "needs 576"),
                         (("compile", short, "-o", tmp_path / "o.npub"), "needs 576")]:
        r = run_cli(*args)
        assert r.returncode == 2, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and expect in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_unknown_element_types_and_non_finite_weights():
    odd = TensorProto(name="w", data_type=99, dims=[4], raw_data=bytes(16))
    _refused(_model([node("Add", ["x", "w"], ["y"])], {"x": (1, 4)}, [odd]).SerializeToString(),
             "initializer 'w' has unknown element type 99")
    m = _model([node("Relu", ["x"], ["y"])], {"x": (1, 4)}, [])
    m.graph.input[0].type.tensor_type.elem_type = 99
    _refused(m.SerializeToString(), "value 'x' has unknown element type 99")
    for bad in (np.inf, np.nan):
        w = W["w"].copy()
        w[0, 0, 0, 0] = bad
        _refused(model_bytes([node("Conv", ["x", "w"], ["y"])], X, ["y"], {"w": w}),
                 "weight 'w' of ONNX node 'Conv_y' holds non-finite values")


def test_empty_activation_and_unfoldable_constant():
    """A Slice whose bounds leave nothing (fuzz case: a LUT over 0 elements stepped by 0) and a
    constant Concat of arrays of different ranks are refused at import, in one line."""
    starts, ends = (numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("s", 5), ("e", 5)))
    axes = numpy_helper.from_array(np.array([2], np.int64), "a")
    empty = _model([node("Slice", ["x", "s", "e", "a"], ["c"]), node("Relu", ["c"], ["y"])], X, [starts, ends, axes])
    _refused(empty.SerializeToString(), "is empty", "no empty activation")
    a, b = numpy_helper.from_array(np.zeros((2, 2), np.float32), "p"), numpy_helper.from_array(np.zeros(2, np.float32), "q")
    ranks = _model([node("Concat", ["p", "q"], ["k"], axis=0), node("Add", ["x", "k"], ["y"])], X, [a, b])
    _refused(ranks.SerializeToString(), "cannot evaluate constant ONNX node", "(Concat)")
