"""What the fuzz suite feeds npukit: the seed inputs of each target, how a case is made from
them (`make`, in the forked child) and what npukit is asked to do with it (`execute`).

Seeds are the committed models (examples/, tests/data/) and small models built here; the
`.npub` seeds are compiled from them when a target is first used (in the parent, before any
fork, so the numba kernels are compiled once).
"""
from __future__ import annotations

import io
import pickle
import random
import struct
import tomllib
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..limits import TENSOR_ELEMENTS
from . import fuzz_mutate as mu

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"


class UncheckedLimit(Exception):
    """npukit accepted something beyond a limit of npukit/limits.py (found by the harness)."""


class RunAfterCompile(Exception):
    """A model compiled, then its run or profile failed with an npukit error: the compiler
    should have refused it."""


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str                                   # file suffix of a saved case
    make: Callable[[random.Random], Any]          # a case (bytes, or an object for `run`)
    execute: Callable[[Any, Path], None]          # npukit on the case, in a scratch folder
    encode: Callable[[Any], bytes] = lambda case: case


# ---------------------------------------------------------------- seed models


def _onnx_models() -> dict[str, tuple[bytes, dict | None]]:
    """{name: (serialized ONNX, input_shapes)}: tiny single-op models, a QDQ model, a model
    with a host operator, and the committed digits CNN."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    r = np.random.default_rng(0)

    def init(name, shape, dtype=np.float32):
        return onnx.numpy_helper.from_array((r.standard_normal(shape) * 0.3).astype(dtype), name)

    def model(nodes, inputs, outputs, inits, opset=17):
        g = h.make_graph(nodes, "g", [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs],
                         [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in outputs], inits)
        return h.make_model(g, opset_imports=[h.make_opsetid("", opset)], ir_version=8).SerializeToString()

    q = [onnx.numpy_helper.from_array(np.array(0.05, np.float32), "s"),
         onnx.numpy_helper.from_array(np.array(0, np.int8), "z"),
         onnx.numpy_helper.from_array(r.integers(-50, 50, (4, 3, 3, 3)).astype(np.int8), "wq"),
         onnx.numpy_helper.from_array(np.full(4, 0.01, np.float32), "ws"),
         onnx.numpy_helper.from_array(np.zeros(4, np.int8), "wz")]
    models = {
        "conv": model([h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
                       h.make_node("Relu", ["c"], ["y"])],
                      [("x", [1, 3, 8, 8])], [("y", [1, 4, 8, 8])], [init("w", (4, 3, 3, 3)), init("b", (4,))]),
        "depthwise": model([h.make_node("Conv", ["x", "w"], ["y"], group=3, kernel_shape=[3, 3], strides=[2, 2])],
                           [("x", [1, 3, 9, 9])], [("y", [1, 3, 4, 4])], [init("w", (3, 1, 3, 3))]),
        "matmul": model([h.make_node("MatMul", ["x", "w"], ["m"]), h.make_node("Add", ["m", "b"], ["y"])],
                        [("x", [2, 16])], [("y", [2, 8])], [init("w", (16, 8)), init("b", (8,))]),
        "add": model([h.make_node("Add", ["x", "x2"], ["y"])], [("x", [1, 4, 4, 4]), ("x2", [1, 4, 4, 4])],
                     [("y", [1, 4, 4, 4])], []),
        "qdq": model([h.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                      h.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                      h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
                      h.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
                      h.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
                      h.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"])],
                     [("x", [1, 3, 6, 6])], [("y", [1, 4, 6, 6])], q, opset=13),
        "host_topk": model([h.make_node("MatMul", ["x", "w"], ["m"]),
                            h.make_node("TopK", ["m", "k"], ["y", "i"], axis=-1)],
                           [("x", [1, 8])], [("y", [1, 3])],
                           [init("w", (8, 6)), onnx.numpy_helper.from_array(np.array([3], np.int64), "k")]),
    }
    out: dict[str, tuple[bytes, dict | None]] = {k: (v, None) for k, v in models.items()}
    out["digits"] = (DIGITS.read_bytes(), {"x": (1, 1, 8, 8)})
    return out


ONNX_SEEDS = _onnx_models()
TFLITE_SEEDS = sorted((ROOT / "tests" / "data" / "tflite_ops").glob("*.tflite"))
TFLITE_BIG = sorted((ROOT / "tests" / "data" / "mlperf_tiny").glob("*.tflite"))


def valid_feeds(cm, rng: random.Random) -> dict[str, np.ndarray]:
    """Random inputs of the shapes and types a compiled model declares (refusing, as
    UncheckedLimit, a declared input beyond the tensor size limit)."""
    feeds = {}
    for name, (shape, dtype) in cm.input_specs.items():
        n = int(np.prod([int(s) for s in shape], dtype=object))
        if n > TENSOR_ELEMENTS.value or any(int(s) < 0 for s in shape):
            raise UncheckedLimit(f"input {name!r} of shape {list(shape)[:8]} was accepted")
        g = np.random.default_rng(rng.randrange(2**32))
        feeds[name] = (g.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                       else g.integers(-100, 100, shape).astype(dtype))
    return feeds


def _compile_and_run(path: Path, input_shapes, rng: random.Random) -> None:
    import npukit
    _run_compiled(npukit.compile(path, input_shapes=input_shapes, random_samples=2, sqnr=rng.random() < 0.3), rng)


def _run_compiled(cm, rng: random.Random) -> None:
    import npukit
    try:
        cm.run(valid_feeds(cm, rng))
        cm.profile()
    except npukit.NpukitError as e:
        raise RunAfterCompile(f"compiles, then fails: {type(e).__name__}: {e}") from e


# ---------------------------------------------------------------- onnx


def _onnx_make(rng: random.Random) -> bytes:
    name = rng.choice(sorted(ONNX_SEEDS))
    data, _ = ONNX_SEEDS[name]
    if rng.random() < 0.15:
        return name.encode() + b"\n" + mu.mutate_bytes(data, rng)
    return name.encode() + b"\n" + _retry(lambda: mu.mutate_onnx(_parsed_onnx(name), rng).SerializeToString(),
                                         lambda: mu.mutate_bytes(data, rng))


def _retry(mutate: Callable[[], bytes], fallback: Callable[[], bytes]) -> bytes:
    """A structure-aware mutation, retried when the mutated structure cannot be serialised
    (a value out of its field's range), then a byte-level one."""
    for _ in range(5):
        try:
            return mutate()
        except (ValueError, TypeError, OverflowError, struct.error, IndexError):
            pass
    return fallback()


@cache
def _parsed_onnx(name: str):
    import onnx
    return onnx.load_from_string(ONNX_SEEDS[name][0])


def _onnx_execute(case: bytes, tmp: Path) -> None:
    name, data = case.split(b"\n", 1)
    path = tmp / "sub" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(data)
    (tmp / "sub" / "w.bin").write_bytes(bytes(range(64)))
    (tmp / "outside.bin").write_bytes(bytes(64))
    rng = random.Random(len(data))
    _compile_and_run(path, ONNX_SEEDS[name.decode()][1], rng)


# ---------------------------------------------------------------- tflite


def _tflite_make(rng: random.Random, big: bool = False) -> bytes:
    seed = rng.choice(TFLITE_SEEDS + (TFLITE_BIG if big else [])).read_bytes()
    if rng.random() < 0.15:
        return mu.mutate_bytes(seed, rng, keep_head=8)
    return _retry(lambda: mu.mutate_tflite(seed, rng), lambda: mu.mutate_bytes(seed, rng, keep_head=8))


def _tflite_execute(case: bytes, tmp: Path) -> None:
    path = tmp / "model.tflite"
    path.write_bytes(case)
    _compile_and_run(path, None, random.Random(len(case)))


# ---------------------------------------------------------------- npub


@cache
def npub_seeds() -> tuple[bytes, ...]:
    """Binaries compiled from the seeds: a TFLite and ONNX model each, one with a host segment."""
    import npukit
    out = []
    for name in ("conv", "qdq", "host_topk", "digits"):
        data, shapes = ONNX_SEEDS[name]
        path = Path("/tmp") / f"npukit-fuzz-seed-{name}.onnx"
        path.write_bytes(data)
        out.append(npukit.compile(path, input_shapes=shapes, random_samples=2).to_bytes())
    for p in TFLITE_SEEDS[:4]:
        out.append(npukit.compile(p).to_bytes())
    for b in out:                     # compile the simulator's kernels once, before any fork
        cm = npukit.loads(b)
        cm.run(valid_feeds(cm, random.Random(0)))
        cm.profile()
    return tuple(out)


def huge_npz(rng: random.Random) -> bytes:
    """A small .npz whose one array declares far more elements than it holds."""
    shape = rng.choice(((2**40,), (2**20, 2**20), (1 << 31,), (10**9, 10**9)))
    dtype = rng.choice(("<f4", "<i8", "|O", "<c16"))
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(rng.choice((0, 64, 4096)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("arr_0.npy", npy)
    return buf.getvalue()


def _npub_make(rng: random.Random) -> bytes:
    from ..arch import Arch
    from ..isa import container
    seed = rng.choice(npub_seeds())
    if rng.random() < 0.1:
        return mu.mutate_bytes(seed, rng)
    sections, meta = container.unpack(seed)
    name = rng.choice(sorted(sections) + ["meta", "meta", "host_arrays", "code"])
    if name == "meta":
        meta = mu.mutate_tree(meta, rng)
        if not isinstance(meta, dict):
            meta = {"value": meta}
        meta.setdefault("arch_fingerprint", container.unpack(seed)[1]["arch_fingerprint"])
    elif name == "host_arrays" and rng.random() < 0.5:
        sections[name] = huge_npz(rng)
    elif name == "arch":
        text = sections[name].decode()
        sections[name] = mu.mutate_toml(tomllib.loads(text), text, rng).encode()
        try:                         # keep the fingerprint right so the load goes past it
            meta["arch_fingerprint"] = Arch.from_toml_text(sections[name].decode()).fingerprint
        except Exception:
            pass
    elif name in ("io", "layers", "host", "regions"):
        sections[name] = mu.dumps_json(mu.mutate_tree(__import__("json").loads(sections[name]), rng))
    elif rng.random() < 0.15:
        del sections[name]
    else:
        sections[name] = mu.mutate_bytes(sections[name], rng)
    try:
        return container.pack(sections, meta)
    except Exception:
        return mu.mutate_bytes(seed, rng)


def _npub_execute(case: bytes, tmp: Path) -> None:
    import npukit
    rng = random.Random(len(case))
    cm = npukit.loads(case)
    repr(cm)
    cm.disasm()
    cm.profile()
    cm.run(valid_feeds(cm, rng))


# ---------------------------------------------------------------- arch / space TOML


def _arch_make(rng: random.Random) -> bytes:
    preset = rng.choice(sorted((ROOT / "npukit" / "arch" / "presets").glob("*.toml")))
    text = preset.read_text()
    return mu.mutate_toml(tomllib.loads(text), text, rng).encode()


def _arch_execute(case: bytes, tmp: Path) -> None:
    import npukit
    from ..arch import Arch
    arch = Arch.from_toml_text(case.decode("utf-8", "replace"))
    path = tmp / "conv.onnx"
    path.write_bytes(ONNX_SEEDS["conv"][0])
    _run_compiled(npukit.compile(path, arch=arch, random_samples=1, sqnr=False), random.Random(0))


def _space_make(rng: random.Random) -> bytes:
    text = (ROOT / "examples" / "space.toml").read_text().replace('"digits/', f'"{DIGITS.parent}/')
    return mu.mutate_toml(tomllib.loads(text), text, rng).encode()


def _space_execute(case: bytes, tmp: Path) -> None:
    from ..dse.space import load_space
    from ..dse.strategies import make_strategy
    path = tmp / "space.toml"
    path.write_bytes(case)
    space = load_space(path)
    make_strategy(space).ask()


# ---------------------------------------------------------------- run inputs


@cache
def run_models() -> tuple:
    import npukit
    path = Path("/tmp/npukit-fuzz-seed-conv.onnx")
    path.write_bytes(ONNX_SEEDS["conv"][0])
    models = (npukit.compile(TFLITE_SEEDS[0]), npukit.compile(path, random_samples=2))
    for cm in models:
        cm.run(valid_feeds(cm, random.Random(0)))
    return models


def _bad_array(rng: random.Random, shape: tuple, dtype: np.dtype) -> Any:
    pick = rng.randrange(16)
    good = np.zeros(shape, dtype)
    return [good.astype(np.float32) + 0.5, good.astype(np.complex64), np.full(shape, 1e300), np.full(shape, np.nan),
            np.full(shape, -np.inf), good.astype(object), np.zeros(shape[:-1] or (1,), dtype), np.zeros((0,), dtype),
            good.tolist(), None, "x", np.broadcast_to(np.float32(0), (10**9,)),
            np.full(shape, 2**40, np.int64), good.astype(">f4"), good.astype("datetime64[s]"),
            np.zeros(shape + (1,), dtype)][pick]


def _run_make(rng: random.Random) -> tuple:
    which = rng.randrange(2)
    cm = run_models()[which]
    feeds: Any = {n: np.zeros(s, d) for n, (s, d) in cm.input_specs.items()}
    name = rng.choice(sorted(feeds))
    op = rng.randrange(10)
    if op < 6:
        feeds[name] = _bad_array(rng, *cm.input_specs[name])
    elif op == 6:
        del feeds[name]
    elif op == 7:
        feeds["extra"] = feeds[name]
    elif op == 8:
        feeds = rng.choice(([feeds[name]], None, feeds[name], {1: feeds[name]}))
    else:
        feeds[name] = np.asfortranarray(np.zeros(cm.input_specs[name][0], np.float16))
    return which, rng.random() < 0.2, feeds


def _run_execute(case: tuple, tmp: Path) -> None:
    which, raw, feeds = case
    cm = run_models()[which]
    (cm.run_int if raw else cm.run)(feeds)


def _pickle(case: Any) -> bytes:
    return pickle.dumps(case)


TARGETS = {t.name: t for t in (
    Target("onnx", ".onnx", _onnx_make, _onnx_execute, lambda case: case.split(b"\n", 1)[1]),
    Target("tflite", ".tflite", _tflite_make, _tflite_execute),
    Target("tflite_big", ".tflite", lambda r: _tflite_make(r, big=True), _tflite_execute),
    Target("npub", ".npub", _npub_make, _npub_execute),
    Target("arch", ".toml", _arch_make, _arch_execute),
    Target("space", ".toml", _space_make, _space_execute),
    Target("run", ".pkl", _run_make, _run_execute, _pickle),
)}


@cache
def warm() -> None:
    """Compile and run every seed once in the parent, so no child compiles a kernel."""
    npub_seeds()
    run_models()
    for name, (data, shapes) in ONNX_SEEDS.items():
        path = Path("/tmp") / f"npukit-fuzz-seed-{name}.onnx"
        path.write_bytes(data)
        _compile_and_run(path, shapes, random.Random(0))
    for p in TFLITE_SEEDS:
        _compile_and_run(p, None, random.Random(0))
