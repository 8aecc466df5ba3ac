"""Speech front end in numpy: framing, power spectrum, log-mel filterbank, MFCC.

The keyword spotter's input is the classic MLPerf Tiny one: 1 s of 16 kHz audio, 30 ms Hann
frames every 20 ms (49 frames), 512-point FFT, 40 mel bands (20 Hz - 4 kHz, HTK mel scale),
natural log, orthonormal DCT-II, the first 10 coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.errors import InputError


@dataclass(frozen=True)
class MfccConfig:
    sample_rate: int = 16000
    frame_length: int = 480      # 30 ms
    hop_length: int = 320        # 20 ms
    n_fft: int = 512
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 4000.0
    n_mfcc: int = 10
    log_floor: float = 1e-6

    def n_frames(self, n_samples: int) -> int:
        if n_samples < self.frame_length:
            raise InputError(f"{n_samples} samples is shorter than one frame ({self.frame_length})")
        return 1 + (n_samples - self.frame_length) // self.hop_length


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: MfccConfig) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters, equally spaced on the mel scale."""
    if not 0 <= cfg.f_min < cfg.f_max <= cfg.sample_rate / 2:
        raise InputError(f"mel range {cfg.f_min}-{cfg.f_max} Hz is not inside 0-{cfg.sample_rate / 2} Hz")
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    bins = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] orthonormal DCT-II (as scipy.fft.dct(type=2, norm='ortho'))."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m


def power_spectrum(audio: np.ndarray, cfg: MfccConfig) -> np.ndarray:
    """[frames, n_fft // 2 + 1] power of Hann-windowed frames of a 1-D float signal."""
    x = np.asarray(audio, np.float64)
    if x.ndim != 1:
        raise InputError(f"expected 1-D audio, got shape {x.shape}")
    n = cfg.n_frames(len(x))
    index = np.arange(cfg.frame_length)[None, :] + cfg.hop_length * np.arange(n)[:, None]
    window = np.hanning(cfg.frame_length + 1)[:-1]  # periodic Hann
    return np.abs(np.fft.rfft(x[index] * window, cfg.n_fft)) ** 2


def log_mel(audio: np.ndarray, cfg: MfccConfig = MfccConfig()) -> np.ndarray:
    """[frames, n_mels] natural-log mel energies."""
    return np.log(power_spectrum(audio, cfg) @ mel_filterbank(cfg).T + cfg.log_floor)


def mfcc(audio: np.ndarray, cfg: MfccConfig = MfccConfig()) -> np.ndarray:
    """[frames, n_mfcc] float32 MFCCs (49 x 10 for 1 s at the defaults)."""
    return (log_mel(audio, cfg) @ dct_matrix(cfg.n_mels, cfg.n_mfcc).T).astype(np.float32)
