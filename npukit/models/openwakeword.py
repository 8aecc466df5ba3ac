"""openWakeWord's feature pipeline as pyopen-wakeword runs it, on the float models in LiteRT.

16 kHz audio (int16 sample values as float32) -> log-mel frames from 1760-sample windows
every 1280 samples (melspectrogram.tflite, 8 frames each, then / 10 + 2) -> a 96-d speech
embedding of every 76 frames, every 8 frames (embedding_model.tflite) -> a wake-word head
over the last 16 embeddings. The corpus judges each stage alone, on the float pipeline's
inputs to it, over recorded speech followed by a wake phrase (espeak-ng): "okay nabu", or the
phrase of the head judged ("hey jarvis", whose verifier runs only when the phrase is heard).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import corpus_inputs as I
from .fetch import fetch

MEL_SAMPLES, HOP_SAMPLES = 1760, 1280       # one melspectrogram call, and the step between calls
EMB_FRAMES, EMB_HOP = 76, 8                 # mel frames per embedding, and the step between them
HEAD_WINDOWS = 16                           # embeddings per wake-word head call


def _run(name: str, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(fetch(name)))
    d = it.get_input_details()[0]
    it.resize_tensor_input(d["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(d["index"], x.astype(np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


# the wake phrase spoken by espeak-ng, one voice (name, speed, pitch) per clip
VOICES = (("en-us", 140, 50), ("en-us+f3", 130, 60))


def clip_audio(clip: int, phrase: str = "okay nabu") -> np.ndarray:
    """16 kHz float32 in [-1, 1]: 1.5 s of a pocketsphinx recording, then `phrase`
    synthesised in voice `clip`, between short silences."""
    from .datasets_audio import synthesize
    spoken = synthesize(phrase, *VOICES[clip])
    spoken = spoken / max(1e-6, float(np.abs(spoken).max())) * 0.5
    gap = np.zeros(4000, np.float32)
    return np.concatenate([gap, I.speech(1.5)[clip], gap, spoken, gap, gap]).astype(np.float32)


@lru_cache(maxsize=None)
def audio_windows(clip: int, phrase: str = "okay nabu") -> np.ndarray:
    """[n, 1, 1760]: the melspectrogram model's inputs over clip `clip`."""
    audio = np.round(clip_audio(clip, phrase) * 32767.0).astype(np.float32)
    starts = range(0, len(audio) - MEL_SAMPLES + 1, HOP_SAMPLES)
    return np.stack([audio[s:s + MEL_SAMPLES][None] for s in starts])


@lru_cache(maxsize=None)
def mel_windows(clip: int, phrase: str = "okay nabu") -> np.ndarray:
    """[n, 1, 76, 32, 1]: the embedding model's inputs (float mel frames / 10 + 2)."""
    mels = np.concatenate([_run("oww-melspectrogram", w)[0, 0] for w in audio_windows(clip, phrase)]) / 10 + 2
    starts = range(0, len(mels) - EMB_FRAMES + 1, EMB_HOP)
    return np.stack([mels[s:s + EMB_FRAMES][None, :, :, None] for s in starts]).astype(np.float32)


@lru_cache(maxsize=None)
def embedding_windows(clip: int, phrase: str = "okay nabu") -> np.ndarray:
    """[n, 1, 16, 96]: the wake-word heads' inputs (float embeddings)."""
    emb = np.concatenate([_run("oww-embedding", w).reshape(1, 96) for w in mel_windows(clip, phrase)])
    starts = range(0, len(emb) - HEAD_WINDOWS + 1)
    return np.stack([emb[s:s + HEAD_WINDOWS][None] for s in starts]).astype(np.float32)
