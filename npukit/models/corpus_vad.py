"""The corpus's silero VAD inputs: pocketsphinx recordings cut as the packages cut them, with
the recurrent state the float model reaches streaming them (so each call is judged alone,
from float's state). Calibration seeds (< 1000) come from some recordings, evaluation seeds
from others."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from . import corpus_inputs as I
from .fetch import fetch

Feeds = dict[str, np.ndarray]
WINDOW, CONTEXT = 512, 64           # samples per window at 16 kHz, and the context before each
SEQ = 16                            # windows per call of faster-whisper's export (0.5 s)


def _session(name: str):
    import onnxruntime as ort
    return ort.InferenceSession(str(fetch(name)), providers=["CPUExecutionProvider"])


@lru_cache(maxsize=None)
def _chunk_feeds(name: str, start: int) -> tuple[Feeds, ...]:
    """silero-vad's own export: one window and its context a call, the state [2, 1, 128]."""
    session = _session(name)
    feeds = []
    for audio in I.speech(2.0)[start::3][:2]:
        state = np.zeros((2, 1, 128), np.float32)
        padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio])
        for i in range(len(audio) // WINDOW):
            feed = {"input": padded[i * WINDOW: (i + 1) * WINDOW + CONTEXT][None], "state": state}
            feeds.append(feed)
            state = session.run(["stateN"], {**feed, "sr": np.array(16000, np.int64)})[0]
    return tuple(feeds)


def chunk_sample(name: str) -> Callable[[int], Feeds]:
    return _sampler(_chunk_feeds, name, 7)


@lru_cache(maxsize=None)
def _sequence_feeds(name: str, start: int) -> tuple[Feeds, ...]:
    """faster-whisper's export: [SEQ, 576] windows with their contexts a call (the previous
    window's last 64 samples, zeros before the first), h and c [1, 1, 128] carried."""
    session = _session(name)
    feeds = []
    for audio in I.speech(2.0)[start::3][:3]:
        windows = audio[: len(audio) // WINDOW * WINDOW].reshape(-1, WINDOW)
        context = np.concatenate([np.zeros((1, CONTEXT), np.float32), windows[:-1, -CONTEXT:]])
        rows = np.concatenate([context, windows], axis=1).astype(np.float32)
        h = c = np.zeros((1, 1, 128), np.float32)
        for i in range(0, len(rows) - SEQ + 1, SEQ):
            feed = {"input": rows[i:i + SEQ], "h": h, "c": c}
            feeds.append(feed)
            _, h, c = session.run(None, feed)
    return tuple(feeds)


def sequence_sample(name: str) -> Callable[[int], Feeds]:
    return _sampler(_sequence_feeds, name, 5)


def _sampler(feeds_of: Callable[[str, int], tuple[Feeds, ...]], name: str, stride: int) -> Callable[[int], Feeds]:
    """Seed -> one of `name`'s feeds: calibration seeds (< 1000) from the first recordings,
    held-out seeds from the next, `stride` apart."""
    def sample(seed: int) -> Feeds:
        feeds = feeds_of(name, 0 if seed < 1000 else 1)
        return feeds[(seed * stride) % len(feeds)]
    return sample
