"""Output SQNR over held-out folds, pooled and with the fold that costs an output most left out.

`--precision auto` measures each held-out fold (quant.precision.folds) on the graph calibrated
without it. With few calibration samples a fold is one sample, and one sample on which every
program reads badly decides the SQNR pooled over the folds (pose-landmark-full's landmarks, 4
folds of one sample: 21.7 / 19.1 / 21.4 / 1.0 dB, pooled 4.6 dB). The goals `auto` compares
programs against when min_sqnr is out of reach, the prefixes that qualify, and the weight
rounding it ships are judged on `Measurement.trimmed`: per output, the SQNR pooled over every
fold but the one whose removal raises it most (with TRIM_MIN_FOLDS folds or more; fewer: the
pooled SQNR). Noise and signal powers are summed before the ratio, so an output that is one
number a fold (a [1, 1] presence score) is judged over the other folds' values together.
The trimmed SQNR is never below the pooled one (the pooled noise ratio is a signal-weighted
mean of the folds' ratios; leaving the worst out lowers it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

TRIM_MIN_FOLDS = 3      # with fewer folds one left out is a third or more of the samples: pooled


def _db(signal: float, noise: float) -> float:
    if noise <= 0:
        return float("inf")
    return float("-inf") if signal <= 0 else float(10 * np.log10(signal / noise))


def trimmed_db(sums: Sequence[tuple[float, float]]) -> float:
    """From per-fold (signal power, noise power) of one output: the SQNR pooled over all folds
    but the one whose removal raises it most (TRIM_MIN_FOLDS folds or more), else pooled."""
    signal, noise = sum(s for s, _ in sums), sum(n for _, n in sums)
    if len(sums) < TRIM_MIN_FOLDS:
        return _db(signal, noise)
    return max(_db(signal - s, noise - n) for s, n in sums)


@dataclass(frozen=True)
class Measurement:
    """Per output counted (quant.precision.counted_sqnr), its SQNR (dB) over the held-out folds."""
    pooled: Mapping[str, float]     # all folds' samples together (what is reported)
    trimmed: Mapping[str, float]    # all folds but the one that costs the output most (what is judged)

    @staticmethod
    def of(v: Mapping[str, float] | float | Measurement) -> Measurement:
        """`v` as a measurement: per output SQNRs, or one number (output ""), both statistics
        alike (one fold, or a measure that gives no folds)."""
        if isinstance(v, Measurement):
            return v
        d = dict(v) if isinstance(v, Mapping) else {"": float(v)}
        return Measurement(d, d)


def fold_sums(ref: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> tuple[float, float]:
    """Signal and noise power of one output over one fold's samples (float64)."""
    f = np.concatenate([np.asarray(r, np.float64).ravel() for r in ref])
    q = np.concatenate([np.asarray(x, np.float64).ravel() for x in got])
    return float(f @ f), float((f - q) @ (f - q))


def measurement(pooled: Mapping[str, float], ref: Sequence[Sequence[Mapping[str, np.ndarray]]],
                got: Sequence[Sequence[Mapping[str, np.ndarray]]]) -> Measurement:
    """The outputs of `pooled` (their pooled SQNRs, as counted) with their trimmed SQNRs from
    `ref` / `got`: per fold, per sample, output -> values."""
    trimmed = {o: trimmed_db([fold_sums([r[o] for r in rf], [x[o] for x in gf]) for rf, gf in zip(ref, got)])
               for o in pooled}
    return Measurement(dict(pooled), trimmed)
