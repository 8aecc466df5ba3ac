"""Audio data from Debian packages: espeak-ng keyword synthesis and pocketsphinx recordings.

- Keywords: espeak-ng speaks each word in several voices, speeds and pitches; the clip is
  resampled to 16 kHz, shifted inside a 1 s window and mixed with coloured noise at a random
  SNR (`render_clip`). `kws_plan` is the deterministic list of clips, split by voice so the
  held-out set has voices the training set never heard.
- Recordings: `pocketsphinx-testdata` ships 16 kHz speech (LibriVox, AN4 cards, digits).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npukit.errors import InputError

SAMPLE_RATE = 16000
KEYWORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
LABELS: tuple[str, ...] = ("_silence_", "_unknown_", *KEYWORDS)
UNKNOWN_WORDS: tuple[str, ...] = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila",
                                  "tree", "wow", "zero", "one", "two", "three", "four", "five",
                                  "seven", "nine", "learn", "follow", "forward", "backward", "visual")
ACCENTS: tuple[str, ...] = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc",
                            "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt")
HELD_OUT_VARIANTS: tuple[str, ...] = ("m4", "f4", "klatt")   # voices only the test split has

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")


class DataMissingError(InputError):
    """A Debian data package (or tool) the workload needs is not installed."""


@dataclass(frozen=True)
class Clip:
    """One keyword-spotting example: what to say, how, and how to degrade it."""

    label: int           # index into LABELS
    word: str            # "" for silence
    voice: str           # espeak-ng voice, e.g. "en-gb+f3"
    speed: int           # words per minute
    pitch: int           # 0..99
    shift: float         # where the word starts, as a fraction of the free room in the window
    snr_db: float        # speech-to-noise ratio
    noise: str           # white | pink | brown
    seed: int


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise DataMissingError(f"{tool} is not installed: apt-get install {package} (or scripts/install_data.sh)")
    return path


def read_wav(data: bytes | str | Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV (bytes or path) -> (mono float32 in [-1, 1], sample rate)."""
    try:
        with wave.open(io.BytesIO(data) if isinstance(data, bytes) else str(data)) as w:
            if w.getsampwidth() != 2:
                raise InputError(f"only 16-bit PCM WAV is supported (got {8 * w.getsampwidth()}-bit)")
            raw, channels, rate = w.readframes(w.getnframes()), w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise InputError(f"not a readable WAV file: {exc}") from None
    pcm = np.frombuffer(raw, "<i2").reshape(-1, channels).mean(axis=1)
    return (pcm / 32768.0).astype(np.float32), rate


def read_raw16k(path: str | Path) -> np.ndarray:
    """Headerless 16 kHz 16-bit little-endian mono (pocketsphinx's .raw files) -> float32."""
    return (np.fromfile(path, "<i2") / 32768.0).astype(np.float32)


def resample(audio: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    if rate_in == rate_out:
        return np.asarray(audio, np.float32)
    g = gcd(rate_in, rate_out)
    return resample_poly(audio, rate_out // g, rate_in // g).astype(np.float32)


def synthesize(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng speaking `word` -> float32 at 16 kHz."""
    exe = _need("espeak-ng", "espeak-ng")
    done = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                          capture_output=True, timeout=60)
    if done.returncode != 0 or not done.stdout:
        raise InputError(f"espeak-ng failed for {word!r} voice {voice}: {done.stderr.decode()[:200]}")
    audio, rate = read_wav(done.stdout)
    return resample(audio, rate)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink (1/f) or brown (1/f^2) noise."""
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}.get(colour)
    if exponent is None:
        raise InputError(f"unknown noise colour {colour!r} (white, pink, brown)")
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    x = np.fft.irfft(spectrum / freqs**exponent, n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def render_clip(clip: Clip, speech: np.ndarray | None, length: int = SAMPLE_RATE) -> np.ndarray:
    """Place `speech` in a `length`-sample window (trimmed if longer) and add noise at the SNR."""
    rng = np.random.default_rng(clip.seed)
    out = np.zeros(length, np.float32)
    noise = coloured_noise(length, clip.noise, rng)
    if speech is None or not len(speech):            # silence: background noise only
        return (noise * 10 ** (-clip.snr_db / 20) * 0.05).astype(np.float32)
    voiced = np.flatnonzero(np.abs(speech) > 0.01 * np.abs(speech).max())
    speech = speech[voiced[0]:voiced[-1] + 1][:length]
    start = int(round(clip.shift * (length - len(speech))))
    out[start:start + len(speech)] = speech
    rms = np.sqrt(np.mean(speech**2)) + 1e-12
    out += noise * rms * 10 ** (-clip.snr_db / 20)
    return (out / max(1.0, float(np.abs(out).max()))).astype(np.float32)


def kws_plan(per_class: int = 240, seed: int = 0) -> tuple[list[Clip], list[Clip]]:
    """(train, test) clips: `per_class` per label; voices with a HELD_OUT_VARIANTS variant are
    test only, so about a quarter of each class is spoken by voices the model never heard."""
    rng = np.random.default_rng(seed)
    train: list[Clip] = []
    test: list[Clip] = []
    for label, name in enumerate(LABELS):
        for i in range(per_class):
            accent = ACCENTS[rng.integers(len(ACCENTS))]
            variant = VARIANTS[rng.integers(len(VARIANTS))]
            word = "" if label == 0 else (UNKNOWN_WORDS[rng.integers(len(UNKNOWN_WORDS))] if label == 1 else name)
            clip = Clip(label, word, f"{accent}+{variant}", int(rng.integers(110, 211)), int(rng.integers(20, 81)),
                        float(rng.random()), float(rng.uniform(5.0, 30.0)),
                        ("white", "pink", "brown")[rng.integers(3)], int(rng.integers(2**31)))
            (test if variant in HELD_OUT_VARIANTS else train).append(clip)
    return train, test


def pocketsphinx_recordings(data_dir: str | Path = POCKETSPHINX_DATA) -> dict[str, np.ndarray]:
    """Every speech recording of pocketsphinx-testdata, name -> float32 16 kHz mono."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataMissingError(f"{root} not found: apt-get install pocketsphinx-testdata "
                               "(or scripts/install_data.sh)")
    out: dict[str, np.ndarray] = {}
    for path in sorted(root.rglob("*.wav")):
        audio, rate = read_wav(path)
        out[str(path.relative_to(root))] = resample(audio, rate)
    for path in sorted(root.rglob("*.raw")):
        out[str(path.relative_to(root))] = read_raw16k(path)
    return out
