"""silero-vad on the simulated NPU: compile with the sample rate bound, stream 32 ms chunks.

silero's ONNX takes `input` [1, 64 + 512] (the last 64 samples of the previous chunk, then
the new chunk), `state` [2, 1, 128] (the LSTM's h and c, fed back every chunk) and `sr`
(int64, the sample rate). `sr` selects the 16 kHz network through an `If`, so it is bound to
16000 at compile time; the frontend then folds every `If`. The STFT front runs on the NPU
with 16-bit audio: reflect padding by DMA, the fixed-basis conv as a 16x8 conv (int16 in and
out), the magnitude (Slice, Pow, Add, Sqrt fused) on the VPU into the int8 encoder input. The
LSTM runs on the NPU as TFLite's integer LSTM (int8 hidden, int16 cell state), and so do the
slices of its state out of `state` and the concat into `stateN`: those tensors are int16
(docs/numerics.md), and `run` takes and returns them as float, so the loop feeds `stateN` back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

import npukit  # noqa: E402

SAMPLE_RATE = 16000
CHUNK = 512
CONTEXT = 64
STATE_SHAPE = (2, 1, 128)
THRESHOLD = 0.5
SHAPES = {"input": (1, CONTEXT + CHUNK), "state": STATE_SHAPE}


def chunks(audio: np.ndarray) -> np.ndarray:
    """[n, 576] model inputs: each 512-sample chunk with the 64 samples before it (zeros first)."""
    n = len(audio) // CHUNK
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), np.asarray(audio, np.float32)[:n * CHUNK]])
    return np.stack([padded[i * CHUNK: i * CHUNK + CONTEXT + CHUNK] for i in range(n)])


def stream(step, audio: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Speech probability per chunk; `step(feeds) -> (prob, new_state)`. Also every feed
    (for calibration)."""
    state = np.zeros(STATE_SHAPE, np.float32)
    probs, feeds = [], []
    for x in chunks(audio):
        feed = {"input": x[None], "state": state}
        feeds.append(feed)
        prob, state = step(feed)
        probs.append(prob)
    return np.array(probs, np.float32), feeds


def onnxruntime_step(model_path: str | Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    sr = np.array(SAMPLE_RATE, np.int64)

    def step(feed):
        prob, state = session.run(["output", "stateN"], {**feed, "sr": sr})
        return float(prob.ravel()[0]), state
    return step


def npu_step(prog: npukit.CompiledModel):
    def step(feed):
        out = prog.run(feed)
        return float(out["output"].ravel()[0]), out["stateN"]
    return step


def calibration_feeds(model_path: str | Path, audios: list[np.ndarray], n: int = 96, seed: int = 0) -> dict:
    """`n` (input, state) pairs met while streaming `audios` through the float model."""
    step = onnxruntime_step(model_path)
    feeds = [f for audio in audios for f in stream(step, audio)[1]]
    pick = np.random.default_rng(seed).choice(len(feeds), min(n, len(feeds)), replace=False)
    return {name: np.stack([feeds[i][name] for i in pick]) for name in SHAPES}


def compile_silero(model_path: str | Path, arch: str, calibration: dict,
                   method: str = "minmax") -> npukit.CompiledModel:
    """Every layer on the NPU (as `npukit compile` does it): `state` and `stateN` are int16
    between chunks (the compiler's rule for tensors tying an LSTM's hidden and cell states)."""
    return npukit.compile(model_path, arch, SHAPES, calibration, method, input_values={"sr": SAMPLE_RATE})


def placement(prog: npukit.CompiledModel) -> dict[str, dict[str, int]]:
    """{"npu": {op: count}, "host": {op: count}} from the program's layer table; host float
    nodes are named by their ONNX operator."""
    kinds = {n.name: getattr(n.attrs, "op_type", None) for n in (prog.qgraph.nodes if prog.qgraph else ())}
    out: dict[str, dict[str, int]] = {"npu": {}, "host": {}}
    for layer in prog.program.layers:
        op = f"{kinds[layer.name]} (float)" if kinds.get(layer.name) else layer.op
        out[layer.target][op] = out[layer.target].get(op, 0) + 1
    return out

