"""What `run` takes: every input by name, of exactly its shape; an integer input only its own
integer dtype, a float input float32 or float16 holding finite numbers. Anything else is a
one-line InputError naming the feed and saying what to pass (never a silent wrap, truncation
or dropped imaginary part); the command line says the same with exit code 2."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.errors import InputError
from npukit.testing.fixtures import run_cli
from npukit.testing.tflite_builder import run_reference

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"
INT8_CONV = ROOT / "tests" / "data" / "tflite_ops" / "conv2d_3x3_same.tflite"   # int8 in, int8 out
SHAPE = (1, 1, 8, 8)


@pytest.fixture(scope="module")
def digits():
    calib = np.random.default_rng(0).random((8, *SHAPE), dtype=np.float32)
    return npukit.compile(DIGITS, "npu-s", {"x": SHAPE}, calibration={"x": calib})


@pytest.fixture(scope="module")
def int8_conv():
    return npukit.compile(INT8_CONV, "npu-s")


def _refused(model, feeds, pattern: str, run=None) -> str:
    with pytest.raises(InputError, match=pattern) as e:
        (run or model.run)(feeds)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300 and "--" not in msg    # API words, not CLI flags
    return msg


def test_int8_input_takes_int8_and_matches_litert(int8_conv):
    (name, (shape, dtype)), = int8_conv.input_specs.items()
    assert dtype == np.int8
    x = np.random.default_rng(1).integers(-128, 128, shape).astype(np.int8)
    got, = int8_conv.run({name: x}).values()
    assert got.dtype == np.int8 and np.array_equal(got, run_reference(INT8_CONV.read_bytes(), [x])[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int16, np.uint8, np.complex64, bool])
def test_int8_input_refuses_every_other_dtype(int8_conv, dtype):
    (name, (shape, _)), = int8_conv.input_specs.items()
    # float 300.7 once became 44 (mod 256): now no dtype but int8 gets in, whatever its values
    msg = _refused(int8_conv, {name: np.full(shape, 300.7).astype(dtype)},
                   rf"^feeds\['{re.escape(name)}'\] is {np.dtype(dtype)} but input '{re.escape(name)}' is int8: "
                   r"pass an array of dtype int8")
    if np.dtype(dtype).kind == "f":
        assert "q = round(x / " in msg                               # how to quantise it


def test_run_int_takes_only_the_npu_dtype(int8_conv):
    (name, (shape, _)), = int8_conv.input_specs.items()
    _refused(int8_conv, {name: np.zeros(shape)}, r"is float64 but input .* is int8", run=int8_conv.run_int)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_float_input_takes_float32_or_float16(digits, dtype):
    x = np.random.default_rng(2).integers(0, 2, SHAPE).astype(dtype)      # exact in both
    want = digits.run({"x": x.astype(np.float32)})["logits"]
    assert np.array_equal(digits.run({"x": x})["logits"], want)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int8, np.uint8])
def test_float_input_refuses_other_real_dtypes_saying_pass_float32(digits, dtype):
    _refused(digits, {"x": np.zeros(SHAPE, dtype)},
             rf"^feeds\['x'\] is {np.dtype(dtype)}; input 'x' takes float32 or float16: pass x.astype\(np.float32\)$")


@pytest.mark.parametrize("value", [np.zeros(SHAPE, np.complex64), np.full(SHAPE, "a"), np.zeros(SHAPE, bool),
                                   np.empty(SHAPE, object)])
def test_float_input_refuses_non_real_arrays(digits, value):
    _refused(digits, {"x": value}, rf"^feeds\['x'\] is {re.escape(str(value.dtype))}; input 'x' takes float32 or "
                                   r"float16$")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nan_and_infinity_are_refused(digits, bad, dtype):
    x = np.zeros(SHAPE, dtype)
    x[0, 0, 3, 4] = bad            # one bad value among zeros (NaN and +Inf once gave the same logits)
    _refused(digits, {"x": x}, r"^feeds\['x'\] holds NaN or infinite values; input 'x' takes finite numbers$")


@pytest.mark.parametrize("feeds, pattern", [
    ({"y": np.zeros(SHAPE, np.float32)}, r"^feeds\['y'\]: the model has no such input \(inputs: \['x'\]\)$"),
    ({}, r"^feeds\['x'\] is missing \(inputs: \['x'\]\)$"),
    ({"x": np.zeros((1, 8, 8), np.float32)}, r"^feeds\['x'\] has shape \[1, 8, 8\]; the model was compiled for "
                                             r"\[1, 1, 8, 8\]$"),
    ({"x": np.zeros((1, 1, 8, 8, 1), np.float32)}, r"has shape \[1, 1, 8, 8, 1\]"),
    ({"x": [[0.0] * 8] * 8}, r"^feeds\['x'\] is a list, not a numpy array: pass an array of dtype float32 and "
                             r"shape \[1, 1, 8, 8\]$"),
    ({"x": None}, r"^feeds\['x'\] is a NoneType, not a numpy array"),
])
def test_wrong_names_shapes_and_non_arrays(digits, feeds, pattern):
    _refused(digits, feeds, pattern)


def test_feeds_not_a_dict(digits):
    _refused(digits, [np.zeros(SHAPE, np.float32)], r"^feeds must be a dict of input name -> array, not list$")


def test_a_refused_feed_leaves_the_model_usable(digits):
    x = np.ones(SHAPE, np.float32)
    want = digits.run({"x": x})["logits"]
    with pytest.raises(InputError):
        digits.run({"x": np.full(SHAPE, np.nan, np.float32)})
    assert np.array_equal(digits.run({"x": x})["logits"], want)


# the command line: the same contract for .npy files, one line and exit code 2


@pytest.fixture(scope="module")
def npub(tmp_path_factory):
    out = tmp_path_factory.mktemp("npub") / "digits.npub"
    r = run_cli("compile", DIGITS, "--arch", "npu-s", "--input-shape", "x=1,1,8,8", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("array, words", [
    (np.zeros(SHAPE), "is float64; input 'x' takes float32 or float16"),
    (np.full(SHAPE, np.nan, np.float32), "NaN or infinite"),
    (np.zeros(SHAPE, np.complex64), "is complex64"),
    (np.zeros((2, 8), np.float32), "has shape [2, 8]"),
])
def test_cli_run_refuses_a_bad_npy_in_one_line(npub, tmp_path, array, words):
    path = tmp_path / "x.npy"
    np.save(path, array)
    r = run_cli("run", npub, "--input", f"x={path}", "-o", tmp_path / "out.npz")
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "cannot read"),                         # empty file
    (lambda p: p.write_bytes(b"\x93NUMPY garbage"), "cannot read"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "cannot read"),   # needs pickle
    (lambda p: p.mkdir(), "cannot read"),                                   # a folder
    (lambda p: None, "cannot read"),                                        # missing
])
def test_cli_run_refuses_an_unreadable_input_file(npub, tmp_path, make, words):
    path = tmp_path / "x.npy"
    make(path)
    r = run_cli("run", npub, "--input", f"x={path}", "-o", tmp_path / "out.npz")
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_run_with_a_good_float32_npy(npub, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones(SHAPE, np.float32))
    r = run_cli("run", npub, "--input", f"x={path}", "-o", tmp_path / "out.npz")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "out.npz")["logits"].shape == (1, 10)


@pytest.mark.parametrize("args, words", [
    (["--input-shape", "x=99999999,99999,8,8"], "max_tensor_elements"),    # was a MemoryError (exit 3)
    (["--input-shape", "x=1,1,8,8", "--calib", "{empty}"], "cannot read --calib"),   # was "Aborted" (EOFError)
    (["--input-shape", "x=1,1,8,8", "--calib", "{npy}"], "a .npy file, not an .npz archive"),
    (["--input-shape", "x=1,1,8,8", "--input-value", "x=@{empty}"], "cannot read --input-value x"),
])
def test_cli_compile_input_mistakes_are_one_line(tmp_path, args, words):
    empty, npy = tmp_path / "empty.npz", tmp_path / "a.npy"
    empty.write_bytes(b"")
    np.save(npy, np.zeros(3, np.float32))
    args = [a.format(empty=empty, npy=npy) for a in args]
    r = run_cli("compile", DIGITS, *args, "-o", tmp_path / "o.npub")
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_run_refuses_an_npz_for_one_input(npub, tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros(SHAPE, np.float32))
    r = run_cli("run", npub, "--input", f"x={path}", "-o", tmp_path / "out.npz")
    assert r.returncode == 2 and "an .npz archive; give one array as a .npy file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_int64_ids_are_taken_in_the_type_the_model_declares(tmp_path):
    """An ONNX model's int64 input (token ids) is held as int32 on the NPU; `run` takes the
    int64 the model declares (as onnxruntime does), equal to onnxruntime, and refuses int32
    and ids beyond what int32 holds."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    g = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)], "m",
                          [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4])],
                          [numpy_helper.from_array(table, "table")])
    path = tmp_path / "ids.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    m = npukit.compile(path, "npu-s", calibration={"ids": np.arange(12).reshape(4, 1, 3) % 10})
    assert m.input_specs["ids"] == ((1, 3), np.dtype(np.int64))
    ids = np.array([[7, 0, 9]], np.int64)
    want, = ort.InferenceSession(str(path)).run(None, {"ids": ids})
    got = m.run({"ids": ids})["y"]
    assert np.abs(got - want).max() <= 2 * np.abs(table).max() / 127
    _refused(m, {"ids": ids.astype(np.int32)}, r"feeds\['ids'\] is int32 but input 'ids' is int64")
    _refused(m, {"ids": np.array([[1, 2 ** 40, 3]], np.int64)}, r"outside \[-2147483648, 2147483647\]")
