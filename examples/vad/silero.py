"""silero-vad on the simulated NPU: compile with the sample rate bound, stream 32 ms chunks.

silero's ONNX takes `input` [1, 64 + 512] (the last 64 samples of the previous chunk, then
the new chunk), `state` [2, 1, 128] (the LSTM's h and c, fed back every chunk) and `sr`
(int64, the sample rate). `sr` selects the 16 kHz network through an `If`, so it is bound to
16000 at compile time; the frontend then folds every `If`. The STFT front runs on the NPU
with 16-bit audio: reflect padding by DMA, the fixed-basis conv as a 16x8 conv (int16 in and
out), the magnitude (Slice, Pow, Add, Sqrt fused) on the VPU into the int8 encoder input. The
LSTM runs on the NPU as TFLite's integer LSTM (int8 hidden, int16 cell state); the gathers of
its state out of `state` and the concat into `stateN` run in float on the host.
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


# the recurrent state's ends: state -> gathers of h and c (the NPU could slice them, but the state
# would then be one int8 tensor) and the unsqueezes / concat into stateN stay float on the host, so
# stateN is float; the LSTM between them runs on the NPU as TFLite's integer LSTM (h int8, c int16)
# (the STFT front is not listed: it compiles to the NPU with int16 audio, see quant.wide.magnitude_int16)
# (names as in silero's op15 file; the default file prefixes them with its If branch's name)
HOST_PREFIXES = ("/decoder/Gather_2", "/decoder/Gather_3", "/decoder/Unsqueeze", "/decoder/Concat",
                 "/Add")


def host_nodes(model_path: str | Path) -> frozenset[str]:
    """ONNX nodes run in float on the host although the NPU could: the recurrent state's path,
    so h and c stay float between chunks."""
    import onnx

    def names(graph):
        for node in graph.node:
            yield node.name
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    yield from names(a.g)
    model = onnx.load(str(model_path))
    def core(name: str) -> str:
        name = name.split("__")[-1]
        return name[len("/model"):] if name.startswith("/model/") else name
    return frozenset(n for n in names(model.graph) if core(n).startswith(HOST_PREFIXES))


def compile_silero(model_path: str | Path, arch: str, calibration: dict,
                   method: str = "minmax") -> npukit.CompiledModel:
    return npukit.compile(model_path, arch, SHAPES, calibration, method, input_values={"sr": SAMPLE_RATE},
                          host_nodes=host_nodes(model_path))


def placement(prog: npukit.CompiledModel) -> dict[str, dict[str, int]]:
    """{"npu": {op: count}, "host": {op: count}} from the program's layer table; host float
    nodes are named by their ONNX operator."""
    kinds = {n.name: getattr(n.attrs, "op_type", None) for n in (prog.qgraph.nodes if prog.qgraph else ())}
    out: dict[str, dict[str, int]] = {"npu": {}, "host": {}}
    for layer in prog.program.layers:
        op = f"{kinds[layer.name]} (float)" if kinds.get(layer.name) else layer.op
        out[layer.target][op] = out[layer.target].get(op, 0) + 1
    return out

