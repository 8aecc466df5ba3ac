"""Streaming wake-word detection as pymicro-wakeword does it, around any int8 model runner.

Audio (16 kHz int16) -> the micro frontend's 40 features every 10 ms -> windows of `stride`
feature rows quantised with the model's input scale -> one model call per window (the model
keeps its own state between calls) -> dequantised probability -> mean over a sliding window
-> detection when the mean exceeds the published cutoff. Settings come from the wheel's JSON.
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .fetch import fetch

SAMPLE_RATE = 16000
CHUNK_BYTES = 320          # 10 ms of 16-bit audio


@dataclass(frozen=True)
class WakeWordConfig:
    wake_word: str
    cutoff: float
    window: int


def config(name: str) -> WakeWordConfig:
    """The published settings of `wakeword-...` (e.g. "wakeword-okay-nabu")."""
    d = json.loads(fetch(f"{name}-config").read_text())
    return WakeWordConfig(d["wake_word"], float(d["micro"]["probability_cutoff"]),
                          int(d["micro"]["sliding_window_size"]))


def features(audio: np.ndarray) -> np.ndarray:
    """float32 [frames, 40] micro-frontend features of 16 kHz int16 mono audio."""
    from pymicro_features import MicroFrontend
    frontend, raw, out, i = MicroFrontend(), np.asarray(audio, np.int16).tobytes(), [], 0
    while i + CHUNK_BYTES <= len(raw):
        result = frontend.process_samples(raw[i:i + CHUNK_BYTES])
        i += result.samples_read * 2
        if result.features:
            out.append(result.features)
    return np.asarray(out, np.float32).reshape(-1, 40)


def windows(feats: np.ndarray, scale: float, zero_point: int, stride: int = 3) -> np.ndarray:
    """int8 [n, 1, stride, 40] model inputs, quantised as pymicro-wakeword quantises them."""
    n = len(feats) // stride
    q = np.clip(np.round(feats[:n * stride] / scale + zero_point), -128, 127).astype(np.int8)
    return q.reshape(n, 1, stride, 40)


def probabilities(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, out_scale: float,
                  out_zero_point: int, window: int) -> np.ndarray:
    """Sliding-window mean probability after each model call (0 until the window fills)."""
    recent: deque[float] = deque(maxlen=window)
    means = []
    for x in inputs:
        y = run(x)
        recent.append(float((np.float32(y.ravel()[0]) - out_zero_point) * out_scale))
        means.append(float(np.mean(recent)) if len(recent) == window else 0.0)
    return np.asarray(means)


def reference_stream(model_path) -> Callable[[np.ndarray], np.ndarray]:
    """The (stateful, single-input, single-output) model on LiteRT's reference kernels, called
    once per window: its variables persist between calls, as on a device."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from ..progress import native_quiet
    it = Interpreter(model_path=str(model_path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    with native_quiet():        # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate"
        it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        it.set_tensor(i, x)
        it.invoke()
        return it.get_tensor(o).copy()
    return run
