"""Exact percentile tails over a stream of tensors: each side's `cap` most extreme values, where
`cap` covers the 0.01 / 99.99 percentiles of as many values as the stream will hold. The
percentiles read from them equal numpy's (linear interpolation) over every value observed, in
any order, split into any runs that `merged` joins: no subsample, no random draw."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (0.01, 99.99)
_Q = np.asarray(PERCENTILES) / 100     # as numpy scales them
TAIL = 1e-4                            # each side's share


def capacity(total: int) -> int:
    """The extreme values per side that the TAIL percentiles of `total` values interpolate
    between (numpy's virtual index (total - 1) * TAIL from either end, its floor and the next;
    one more for the index's rounding)."""
    return int((max(total, 1) - 1) * TAIL) + 3


class Tails:
    """The `cap` smallest and largest of the values seen so far, and their count; `cap` grows to
    `capacity(expected * size)` at each update of `size` values, so the tails are exact for the
    percentiles of up to `expected` updates of the largest size seen."""

    def __init__(self, expected: int = 1):
        self.expected = max(expected, 1)
        self.cap, self.count = 0, 0
        self.low = self.high = np.zeros(0, np.float32)       # ascending

    def update(self, flat: np.ndarray) -> None:
        self.cap = max(self.cap, capacity(self.expected * flat.size))
        self.count += flat.size
        # with `cap` values kept on a side, a value beyond the innermost of them cannot enter it
        low = flat[flat <= self.low[-1]] if self.low.size >= self.cap else flat
        high = flat[flat >= self.high[0]] if self.high.size >= self.cap else flat
        self.low, self.high = _keep(self.cap, [self.low, _least(low, self.cap)], [self.high, _most(high, self.cap)])

    def percentiles(self) -> tuple[float, float]:
        """numpy's 0.01 and 99.99 percentiles (linear) of every value seen."""
        n = self.count
        at_lo, at_hi = (n - 1) * _Q
        return _lerp(self.low, at_lo), _lerp(self.high, at_hi - (n - self.high.size))


def merged(parts: Sequence[Tails]) -> Tails:
    """The tails of every value the parts (disjoint runs of one stream) saw."""
    out = Tails(max((p.expected for p in parts), default=1))
    out.cap, out.count = max((p.cap for p in parts), default=0), sum(p.count for p in parts)
    out.low, out.high = _keep(out.cap, [p.low for p in parts], [p.high for p in parts])
    return out


def _least(x: np.ndarray, k: int) -> np.ndarray:
    return x if x.size <= k else np.partition(x, k - 1)[:k]


def _most(x: np.ndarray, k: int) -> np.ndarray:
    return x if x.size <= k else np.partition(x, x.size - k)[x.size - k:]


def _keep(cap: int, lows: list[np.ndarray], highs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.sort(np.concatenate(lows)), np.sort(np.concatenate(highs))
    return low[:cap], high[high.size - cap:] if high.size > cap else high


def _lerp(a: np.ndarray, index: float) -> float:
    """The value at fractional `index` of ascending `a`, interpolated linearly (as numpy)."""
    i = min(max(int(np.floor(index)), 0), a.size - 1)
    j = min(i + 1, a.size - 1)
    t = min(max(index - i, 0.0), 1.0)
    diff = float(a[j] - a[i])         # in the values' own type, as numpy
    return float(a[i]) + diff * t if t < 0.5 else float(a[j]) - diff * (1 - t)
