"""The Precise VAD (ovos-vad-plugin-precise==0.0.1, `vad.tflite`: a Keras GRU over 29 MFCC
frames in a TFLite WHILE) with the WHILE on the host, unrolled without ties, and unrolled
with its iterations tied (ir.ties): held-out agreement with LiteRT and npu-m cycles.

    python benchmarks/while_ties.py vad.tflite {host,untied,tied} [--calib 64] [--held 128] [--precision P] [--method M] [--seed S]

Samples: 1.5 s of synthetic audio at 16 kHz (voiced stretches, harmonics of a random pitch
under a syllable-rate envelope, or none, over noise of random level), turned into the
model's features as Precise does (sonopy's MFCC: 0.1 s windows every 0.05 s, a 512-point
FFT, 20 mel filters, 13 coefficients, the first replaced by the log energy), re-implemented
here in numpy. The score is over the held-out samples' probabilities: their cosine against
LiteRT's, the mean and largest difference, and how many fall on the other side of 0.5.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
RATE, WINDOW, HOP, NFFT, NFILT, NMFCC = 16000, 1600, 800, 512, 20, 13


def _filterbanks(n_bins: int) -> np.ndarray:
    def mel(hz):
        return 1125 * np.log(1 + hz / 700.0)
    points = 700 * (np.exp(np.linspace(mel(0), mel(RATE / 2), NFILT + 2) / 1125) - 1)
    bins = np.floor((NFFT + 1) * points / RATE).astype(int)
    fb = np.zeros((NFILT, n_bins))
    for j in range(NFILT):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        fb[j, lo:mid] = (np.arange(lo, mid) - lo) / max(mid - lo, 1)
        fb[j, mid:hi] = (hi - np.arange(mid, hi)) / max(hi - mid, 1)
    return fb


def mfcc(audio: np.ndarray) -> np.ndarray:
    from scipy.fft import dct
    n = 1 + (audio.size - WINDOW) // HOP
    frames = np.stack([audio[k * HOP:k * HOP + WINDOW] for k in range(n)])
    spec = np.fft.rfft(frames, n=NFFT)
    powers = (spec.real ** 2 + spec.imag ** 2) / NFFT
    mels = np.log(np.maximum(powers @ _filterbanks(powers.shape[1]).T, 1e-10))
    out = dct(mels, norm="ortho")[:, :NMFCC]
    out[:, 0] = np.log(np.maximum(powers.sum(1), 1e-10))
    return out.astype(np.float32)


def audio(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(1.5 * RATE)) / RATE
    x = rng.uniform(0.001, 0.05) * rng.standard_normal(t.size)
    if rng.random() < 0.6:         # voiced: a pitch and its harmonics under a syllable envelope
        f0, rate = rng.uniform(90, 250), rng.uniform(2, 6)
        env = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)), 0, None) ** 2
        env *= (t > rng.uniform(0, 0.7)) & (t < rng.uniform(0.8, 1.5))
        voice = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 12))
        x += rng.uniform(0.05, 0.5) * env * voice
    return np.clip(x, -1, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("setting", choices=("host", "untied", "tied"))
    ap.add_argument("--calib", type=int, default=64)
    ap.add_argument("--held", type=int, default=128)
    ap.add_argument("--precision", default="int8", choices=("int8", "int16", "auto"))
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    import npukit
    from npukit.frontend import tflite, tflite_while
    from npukit.testing.tflite_builder import run_default
    if a.setting == "host":
        tflite.unroll_while = lambda cv, op: False
    elif a.setting == "untied":
        tflite_while.iteration_ties = lambda copies: []
    rng = np.random.default_rng(a.seed)
    calib = np.stack([mfcc(audio(rng))[None] for _ in range(a.calib)])
    held = [mfcc(audio(rng))[None] for _ in range(a.held)]
    t0 = time.perf_counter()
    prog = npukit.compile(a.model, "npu-m", calibration={"serving_default_net_input:0": calib}, method=a.method,
                           sqnr=a.precision == "auto", precision=a.precision)
    compile_s = time.perf_counter() - t0
    mb = Path(a.model).read_bytes()
    want = np.array([float(run_default(mb, [x])[0].ravel()[0]) for x in held])
    got = np.array([float(np.asarray(next(iter(prog.run({prog.input_names[0]: x}).values()))).ravel()[0])
                    for x in held])
    prof = prog.profile()
    cosine = float(want @ got / np.linalg.norm(want) / np.linalg.norm(got))
    print(json.dumps({"setting": a.setting, "precision": a.precision, "method": a.method, "calib": a.calib,
                      "seed": a.seed, "cosine": round(cosine, 5),
                      "mean_diff": round(float(np.abs(want - got).mean()), 4),
                      "max_diff": round(float(np.abs(want - got).max()), 4),
                      "flipped": int(np.sum((want > 0.5) != (got > 0.5))), "above_half": int(np.sum(want > 0.5)),
                      "cycles": prof.total_cycles, "host_ops": len(prof.host_ops), "compile_s": round(compile_s, 1)}))


if __name__ == "__main__":
    main()
