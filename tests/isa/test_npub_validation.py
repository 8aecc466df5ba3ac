"""Loading a crafted .npub (issue 17's fuzzing findings): each case is a real compiled binary,
mutated and re-packed with container.pack so every CRC is valid, refused with a one-line
npukit error naming the problem (exit 2 on the command line), never a raw exception, a hang
or a large allocation."""
from __future__ import annotations

import base64
import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.errors import BinaryError
from npukit.isa import container, encoding
from npukit.limits import Limit
from npukit.kernels import host_float
from npukit.testing.fixtures import accumulating_loop_body, run_cli

X = (1, 3, 6, 6)


def _model(trips: int | None) -> bytes:
    """Conv then a Loop over its activations (a host segment): `trips` iterations, or (None)
    no trip count and a condition that stays true."""
    body = accumulating_loop_body()
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Loop", ["n", "t", "c"], ["h"], name="loop", body=body)]
    inits = {"w": w, "n": np.array(trips, np.int64), "t": np.array(True), "half": np.float32(0.5)}
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(X))],
                          [helper.make_empty_tensor_value_info("h")],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("npub") / "loop.onnx"
    path.write_bytes(_model(3))
    calib = {"x": np.random.default_rng(0).standard_normal((4, *X)).astype(np.float32)}
    return npukit.compile(path, "npu-m", calibration=calib).to_bytes()


def repack(data: bytes, **edits) -> bytes:
    """The binary with sections replaced: a value is the new bytes, or a function of the
    section's parsed JSON returning new JSON ("meta" edits the metadata)."""
    sections, meta = container.unpack(data)
    for name, edit in edits.items():
        if name == "meta":
            meta = edit(meta)
        elif callable(edit):
            sections[name] = json.dumps(edit(json.loads(sections[name]))).encode()
        else:
            sections[name] = edit
    return container.pack(sections, meta)


def refused(data: bytes, *words: str, error=BinaryError) -> str:
    with pytest.raises(error) as e:
        npukit.loads(data)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    return message


def test_the_unmodified_binary_loads_and_runs(binary):
    m = npukit.loads(binary)
    assert m.run({"x": np.zeros(X, np.float32)})["h"].shape == (1, 4, 6, 6)


def test_deep_nesting_is_refused_before_parsing(binary):
    deep = b"[" * 200_000 + b"]" * 200_000          # the old loader: RecursionError
    refused(repack(binary, layers=deep), "max_meta_depth", "'layers'")
    refused(repack(binary, host=deep), "max_meta_depth", "'host'")
    nested: list = []
    for _ in range(100):
        nested = [nested]
    refused(repack(binary, meta=lambda m: {**m, "x": nested}), "max_meta_depth", "meta")


def test_crafted_layer_table_is_refused_at_load(binary):
    refused(repack(binary, layers=lambda ls: ls[:1]), "names layer", "layer table has 1")
    refused(repack(binary, layers=lambda ls: [{**ls[0], "macs": "lots"}, *ls[1:]]), "layer 0.macs")
    refused(repack(binary, layers=lambda ls: [{k: v for k, v in ls[0].items() if k != "op"}, *ls[1:]]),
            "layer 0.op", "Field required")
    refused(repack(binary, layers=lambda ls: [{**ls[0], "min_region_bytes": {"nowhere": 5}}, *ls[1:]]),
            "region 'nowhere'")


def test_layer_index_of_a_billion_is_refused_without_allocating(binary):
    code = container.unpack(binary)[0]["code"]
    program = encoding.decode(code)
    program[0] = type(program[0])(**{**vars(program[0]), "layer": 10**9})
    crafted = repack(binary, code=encoding.encode(program))
    tracemalloc.start()
    refused(crafted, "instruction 0 names layer 1000000000")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20


def _npz(payload: bytes, compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        z.writestr("arr_0.npy", payload)
    return buf.getvalue()


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|i1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_array_bomb_is_refused_before_decompression(binary):
    # a compressed member: the old loader inflated whatever it declared (3.5 GB from 3.4 MB)
    refused(repack(binary, host_arrays=_npz(_npy_header((1 << 20,)) + bytes(1 << 20), zipfile.ZIP_DEFLATED)),
            "compressed")
    # a stored member whose header declares 10^12 elements: refused from the header alone
    tracemalloc.start()
    refused(repack(binary, host_arrays=_npz(_npy_header((10**12,)) + bytes(64))), "max_tensor_elements")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20


def _with_wrapper(binary: bytes, edit) -> bytes:
    """The binary with its host Loop's embedded ONNX wrapper model edited."""
    def host(segments):
        attrs = segments[0]["attrs"]
        wrapper = onnx.ModelProto.FromString(base64.b64decode(attrs["onnx_model"]))
        edit(wrapper)
        attrs["onnx_model"] = base64.b64encode(wrapper.SerializeToString()).decode()
        return segments
    return repack(binary, host=host)


def _set_trips(trips: int):
    def edit(wrapper: onnx.ModelProto) -> None:
        (init,) = [t for t in wrapper.graph.initializer if t.data_type == TensorProto.INT64]
        init.CopyFrom(numpy_helper.from_array(np.array(trips, np.int64), init.name))
    return edit


def test_constant_loop_beyond_the_limit_is_refused_at_load(binary):
    refused(_with_wrapper(binary, _set_trips(10**12)), "host segment 0", "max_host_loop_trips",
            "1,000,000,000,000")


def test_operator_outside_the_declared_set_is_refused_at_load(binary):
    def custom(wrapper):
        wrapper.graph.node[0].domain = "com.example"
        wrapper.opset_import.append(helper.make_opsetid("com.example", 1))
    refused(_with_wrapper(binary, custom), "host segment 0", "another operator domain")

    def nonzero(wrapper):
        wrapper.graph.node[0].op_type = "NonZero"
    refused(_with_wrapper(binary, nonzero), "'NonZero'", "not an operator a host segment may run")


def test_endless_data_dependent_loop_ends_in_an_error(binary, monkeypatch):
    def endless(wrapper):      # no trip count; the condition stays true
        wrapper.graph.node[0].input[0] = ""
    m = npukit.loads(_with_wrapper(binary, endless))
    monkeypatch.setattr(host_float, "HOST_SECONDS", Limit("max_host_seconds", 0.5, "seconds"))
    t0 = time.monotonic()
    with pytest.raises(BinaryError, match="max_host_seconds") as e:   # named after its instruction
        m.run({"x": np.zeros(X, np.float32)})
    assert time.monotonic() - t0 < 30 and "\n" not in str(e.value)


def test_io_table_is_checked(binary):
    def io_edit(**change):
        return lambda d: {**d, "inputs": [{**d["inputs"][0], **change}]}
    refused(repack(binary, io=io_edit(dtype="complex64")), "input 0.dtype")
    refused(repack(binary, io=io_edit(perm=[0, 0, 1, 2])), "not a permutation")
    refused(repack(binary, io=io_edit(shape=[1 << 20, 1 << 20])), "max_tensor_elements")
    refused(repack(binary, io=io_edit(addr=1 << 40)), "input 'x'", "reaches bytes")
    refused(repack(binary, io=io_edit(zero_point=1000)), "zero point 1000")


@pytest.mark.parametrize("command", ["run", "profile", "disasm"])
def test_cli_exits_2_with_one_line(binary, tmp_path, command):
    code = container.unpack(binary)[0]["code"]
    program = encoding.decode(code)
    program[0] = type(program[0])(**{**vars(program[0]), "layer": 10**9})
    path = tmp_path / "bad.npub"
    path.write_bytes(repack(binary, code=encoding.encode(program)))
    np.save(tmp_path / "x.npy", np.zeros(X, np.float32))
    extra = {"run": ["--input", tmp_path / "x.npy", "-o", tmp_path / "out.npz"]}.get(command, [])
    r = run_cli(command, path, *extra, timeout=300)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "names layer 1000000000" in r.stderr


def test_a_parameter_record_of_format_2_0_loads_with_its_extension_defaulted():
    """Format 2.1 added the int16 softmax's `floor_tail` (a trailing field with a default): a
    2.0 binary's two immediates still load, with LiteRT's floor (1), the arithmetic it was
    compiled for; too few or too many immediates are one BinaryError."""
    from npukit.isa.immediates import params_from_ints
    from npukit.kernels.kernels_vpu16 import Softmax16Params
    assert params_from_ints(Softmax16Params, (1 << 30, 3)) == Softmax16Params(1 << 30, 3, 1)
    assert params_from_ints(Softmax16Params, (1 << 30, 3, 0)).floor_tail == 0
    for ints in [(1 << 30,), (1 << 30, 3, 0, 7)]:
        with pytest.raises(BinaryError, match=r"Softmax16Params: expected 2 to 3 parameters"):
            params_from_ints(Softmax16Params, ints)
