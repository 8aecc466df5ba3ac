"""Whole int8 TFLite models on the simulated NPU against LiteRT's reference kernels
(BUILTIN_REF): pymicro-wakeword's streaming keyword spotters fed frame after frame, the
MLPerf-Tiny topologies, and the float BlazeFace detector through npukit's own quantisation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from npukit.testing.fixtures import real_model
from npukit.api import CompiledModel, compile as npu_compile
from npukit.arch import load_arch
from npukit.compiler import compile_prequantised
from npukit.frontend.tflite import load_tflite
from npukit.ir.graph import Op

MLPERF = Path(__file__).resolve().parents[1] / "data" / "mlperf_tiny"
WAKEWORDS = ("wakeword-okay-nabu", "wakeword-hey-jarvis", "wakeword-alexa", "wakeword-hey-mycroft")


def _with_logits(path, op: Op) -> tuple[CompiledModel, str]:
    """The model compiled with the output of its last `op` node as an extra output, so the
    comparison sees a value that varies (outputs behind SOFTMAX / LOGISTIC often saturate)."""
    g = load_tflite(path)
    extra = [n for n in g.nodes if n.op is op][-1].outputs[0]
    arch = load_arch("npu-m")
    program = compile_prequantised(dataclasses.replace(g, outputs=g.outputs + (extra,)), arch)[0]
    return CompiledModel(program, arch), extra


def _reference(path, resolver=OpResolverType.BUILTIN_REF) -> Interpreter:
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def _invoke(it: Interpreter, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    return {n: it.get_tensor(index[n]).copy() for n in names}


def speech_like_features(seconds: float, scale: float, zero_point: int, seed: int) -> np.ndarray:
    """int8 [frames, 1, 3, 40] stride-3 feature windows: synthetic voiced audio (a gliding pitch
    with two formants, syllable-rate envelope, noise) through pymicro-features' micro frontend,
    quantised with the model's input scale as pymicro-wakeword feeds it."""
    from pymicro_features import MicroFrontend
    frontend = MicroFrontend()
    rng = np.random.default_rng(seed)
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 50 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = rng.uniform(500, 900), rng.uniform(1200, 2400)
    sig = sum(np.sin(k * phase) * (np.exp(-((k * f0 - formants[0]) / 300) ** 2)
                                   + 0.5 * np.exp(-((k * f0 - formants[1]) / 400) ** 2)) for k in range(1, 30))
    sig *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    audio = (sig / np.abs(sig).max() * 12000 + rng.normal(0, 200, t.size)).astype(np.int16).tobytes()
    feats, i = [], 0
    while i + 320 <= len(audio):
        out = frontend.process_samples(audio[i:i + 320])
        i += out.samples_read * 2
        if out.features:
            feats.append(out.features)
    q = np.clip(np.round(np.asarray(feats) / scale + zero_point), -128, 127).astype(np.int8)
    n = len(q) // 3
    return q[:n * 3].reshape(n, 1, 3, 40)


@pytest.mark.parametrize("name", WAKEWORDS)
def test_wakeword_streams_match_litert_frame_by_frame(name):
    path = real_model(name)
    prog, logits = _with_logits(path, Op.FULLY_CONNECTED)
    out = prog.output_names[0]
    it = _reference(path)
    d = it.get_input_details()[0]
    scale, zp = d["quantization"]
    frames = speech_like_features(2.0, scale, zp, seed=len(name))
    rng = np.random.default_rng(0)
    frames = np.concatenate([frames, np.clip(rng.normal(-80, 30, (20, 1, 3, 40)), -128, 127).astype(np.int8)])
    seen = []
    for k, x in enumerate(frames):
        want = _invoke(it, x, [it.get_output_details()[0]["name"], logits])
        got = prog.run({prog.input_names[0]: x})
        assert got[out].dtype == np.uint8
        np.testing.assert_array_equal(got[out], want[it.get_output_details()[0]["name"]], err_msg=f"frame {k}")
        np.testing.assert_array_equal(got[logits], want[logits], err_msg=f"logits, frame {k}")
        seen.append(int(got[logits].ravel()[0]))
    assert len(set(seen)) > 5          # the stream exercised the model, not one constant answer
    # state matters, and reset_state starts a new stream: replaying frame 0..9 after a reset
    # gives what a fresh interpreter gives, not the continuation
    prog.reset_state()
    fresh = _reference(path)
    for k, x in enumerate(frames[:10]):
        want = _invoke(fresh, x, [logits])[logits]
        np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[logits], want, err_msg=f"reset, frame {k}")


def test_wakeword_state_persists_across_runs():
    path = real_model("wakeword-okay-nabu")
    prog, logits = _with_logits(path, Op.FULLY_CONNECTED)
    x = np.full((1, 3, 40), 20, np.int8)
    y = np.full((1, 3, 40), -100, np.int8)
    first = prog.run({prog.input_names[0]: x})[logits]
    for _ in range(3):
        prog.run({prog.input_names[0]: y})
    later = prog.run({prog.input_names[0]: x})[logits]
    prog.reset_state()
    again = prog.run({prog.input_names[0]: x})[logits]
    assert not np.array_equal(first, later) and np.array_equal(first, again)


@pytest.mark.parametrize("path", sorted(MLPERF.glob("*.tflite")), ids=lambda p: p.stem)
def test_mlperf_tiny_matches_litert_reference(path):
    prog, logits = _with_logits(path, Op.FULLY_CONNECTED if "v1" not in path.stem else Op.CONV2D)
    it = _reference(path)
    d = it.get_input_details()[0]
    out = it.get_output_details()[0]["name"]
    rng = np.random.default_rng(1)
    for k in range(6):
        x = rng.integers(-128, 128, size=d["shape"]).astype(np.int8)
        want = _invoke(it, x, [out, logits])
        got = prog.run({prog.input_names[0]: x})
        np.testing.assert_array_equal(got[prog.output_names[0]], want[out], err_msg=f"input {k}")
        np.testing.assert_array_equal(got[logits], want[logits], err_msg=f"logits, input {k}")
    assert all(layer.target == "npu" for layer in prog.program.layers if layer.op != "softmax")


def test_blazeface_finds_the_astronauts_face_like_the_float_model():
    from skimage import data

    from npukit.models import blazeface as bf
    path = real_model("blazeface-front")
    # calibration: other faces (the cameraman, four LFW faces) and face-free photos; not the astronaut
    def rgb(gray):
        g = np.asarray(gray, np.float32) / (255.0 if np.asarray(gray).dtype == np.uint8 else 1.0)
        return np.repeat(g[..., None], 3, axis=2)
    images = [rgb(data.camera()), data.chelsea(), data.coffee(), data.rocket()]
    images += [rgb(face) for face in data.lfw_subset()[:4]]
    calib = np.stack([bf.preprocess(img) for img in images])
    prog = npu_compile(path, "npu-m", calibration={"input": calib})
    float_model = Interpreter(model_path=str(path))
    float_model.allocate_tensors()

    def detect(image):
        x = bf.preprocess(image)
        got = prog.run({"input": x})
        float_model.set_tensor(float_model.get_input_details()[0]["index"], x)
        float_model.invoke()
        ref = {d["name"]: float_model.get_tensor(d["index"]) for d in float_model.get_output_details()}
        return (bf.decode(got["regressors"], got["classificators"]),
                bf.decode(ref["regressors"], ref["classificators"]))

    ours, theirs = detect(data.astronaut())
    assert len(theirs) == 1 and len(ours) == 1
    assert bf.iou(ours[0].box, theirs[0].box) >= 0.8
    ours, theirs = detect(data.coffee())
    assert ours == [] and theirs == []


def test_cli_run_frames_streams_the_leading_axis(tmp_path):
    from typer.testing import CliRunner

    from npukit.cli import app
    path = real_model("wakeword-okay-nabu")
    npub = tmp_path / "kws.npub"
    runner = CliRunner()
    res = runner.invoke(app, ["compile", str(path), "-o", str(npub)])
    assert res.exit_code == 0, res.output
    rng = np.random.default_rng(5)
    frames = np.clip(rng.normal(-60, 40, (12, 1, 3, 40)), -128, 127).astype(np.int8)
    np.save(tmp_path / "frames.npy", frames)
    res = runner.invoke(app, ["run", str(npub), "--input", str(tmp_path / "frames.npy"), "--frames",
                              "-o", str(tmp_path / "out.npz")])
    assert res.exit_code == 0, res.output
    got = np.load(tmp_path / "out.npz")
    it = _reference(path)
    name = it.get_output_details()[0]["name"]
    want = np.stack([_invoke(it, x, [name])[name] for x in frames])
    (out,) = got.files
    np.testing.assert_array_equal(got[out], want)
