"""Calibration: run the float graph on samples and choose each activation's real range.

Methods: "minmax" (the observed extremes), "percentile" (0.01 / 99.99 percentiles of the
observed values), "hybrid" (percentile, but minmax where the extremes are the answer:
`whole_tensors`), "auto" (`auto_method`: hybrid for dense prediction maps, else minmax),
"mse" (the clipping range that minimises the int8 quantisation error of the observed
values) and "entropy" (TensorRT's KL-divergence calibrator, see
`entropy_threshold`). Observers keep extremes, each channel's (last axis) largest |x|, the
exact percentile tails (quant.tails) and, for mse and entropy, a bounded random sample per tensor.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Iterable, Literal

import numpy as np

from ..choices import METHODS  # noqa: F401 - the methods' names, where callers find them
from ..errors import InputError
from ..ir.graph import DType, Graph, Op
from . import tails as tails_

_SAMPLE = 1 << 15
# -inf, or a value at or below MASKED, marks masked values (a masked_fill before a softmax, an
# additive attention mask): int8 holds them as the range's lowest code. A mask of one finite
# value c and masked values gets the range [c - MASK_SPAN, c], so that adding it saturates any
# sum it meets; a softmax's input that holds masked values gets MASK_MARGIN / beta below its
# finite values, so that a masked entry weighs at most e^-16 of the row's largest (under half
# an int8 output step for ~2,000 masked entries). A softmax's input counts what lies at or
# below SOFTMAX_MASKED / beta as masked (x - 10000, BERT's additive mask: e^-1000 is 0).
MASK_SPAN = 4096.0
MASK_MARGIN = 16.0
MASKED = -1e9      # a masking constant: -1e9, float32's lowest, -inf
SOFTMAX_MASKED = -1000.0


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float
    extremes: tuple[float, float] | None = None     # the observed extremes, where lo / hi clip them

    @property
    def full(self) -> tuple[float, float]:
        """The observed extremes (lo, hi when not clipped): what an int16 tensor's scale
        holds (quant.quantize.quantize_graph)."""
        return self.extremes if self.extremes is not None else (self.lo, self.hi)


Values = Literal["extremes", "tails", "sample"]
"""What an observer keeps beside the extremes: nothing, the exact percentile tails, or those and
a bounded random sample per update."""


def values_for(method: str) -> Values:
    """What calibration `method` ("auto" resolved) reads."""
    return "extremes" if method == "minmax" else "tails" if method in ("percentile", "hybrid") else "sample"


class Observer:
    """A tensor's running extremes, each channel's (last axis) largest |x| for a >= 3-D tensor,
    and as `values` says, its exact percentile tails over up to `expected` updates of its size
    (quant.tails; percentile reads them) and a bounded random sample per update (mse and
    entropy read it)."""

    def __init__(self, seed: int, values: Values = "sample", expected: int = 1, beta: float | None = None):
        self.lo, self.hi = np.inf, -np.inf
        self.masked = False         # seen a masked value
        self.beta = beta            # a softmax's input: its beta
        self.floor = MASKED if beta is None else SOFTMAX_MASKED / beta      # masked at or below
        self.samples: list[np.ndarray] = []
        self.values = values
        self.tails = tails_.Tails(expected)
        self.rng = np.random.default_rng(seed)
        self.channel_amax: np.ndarray | None = None

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32)
        if x.size == 0:
            return
        flat = x.reshape(-1)
        if x.ndim >= 3 and x.shape[-1] > 1:
            cols = flat.reshape(-1, x.shape[-1])
            cmax, cmin = _columns(np.maximum, cols), _columns(np.minimum, cols)
            lo, hi = float(cmin.min()), float(cmax.max())
            amax = np.maximum(cmax, -cmin) if self._plain(lo, hi) else \
                np.nanmax(np.abs(np.where(self._kept(cols), cols, 0)), axis=0)
            prev = self.channel_amax
            self.channel_amax = np.maximum(prev, amax) if prev is not None and prev.shape == amax.shape else amax
        else:
            lo, hi = float(flat.min()), float(flat.max())
        if not self._plain(lo, hi):     # masked values, or a function's pole (log 0, 1 / 0): saturate in int8
            self.masked |= lo <= self.floor
            flat = flat[self._kept(flat)]
            if flat.size == 0:
                return
            lo, hi = float(flat.min()), float(flat.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        if self.values != "extremes":
            self.tails.update(flat)
        if self.values == "sample":
            self.samples.append(flat if flat.size <= _SAMPLE else self.rng.choice(flat, _SAMPLE, replace=False))

    def _plain(self, lo: float, hi: float) -> bool:
        return lo > self.floor and np.isfinite(hi)

    def _kept(self, x: np.ndarray) -> np.ndarray:
        return np.isfinite(x) & (x > self.floor)

    def range(self, method: str) -> Range:
        r = self._finite_range(method)
        if not self.masked or not np.isfinite(r.hi):
            clipped = (r.lo, r.hi) != (self.lo, self.hi) and np.isfinite(self.lo) and np.isfinite(self.hi)
            return Range(r.lo, r.hi, (float(min(r.lo, self.lo)), float(max(r.hi, self.hi)))) if clipped else r
        if r.hi - r.lo <= 0:
            return Range(r.hi - MASK_SPAN, r.hi)
        return Range(r.lo - (0.0 if self.beta is None else MASK_MARGIN / self.beta), r.hi)

    def _finite_range(self, method: str) -> Range:
        if method == "percentile" and self.tails.count:
            return Range(*self.tails.percentiles())
        if method == "minmax" or not self.samples:
            return Range(self.lo, self.hi)
        values = np.concatenate(self.samples)
        if method == "entropy":
            return _entropy_range(values, self.lo, self.hi)
        return _mse_range(values, self.lo, self.hi)


def merged(parts: Sequence[Observer]) -> Observer:
    """One observer of what all of `parts` (the same tensor, observed on disjoint samples) saw."""
    out = Observer(0, parts[0].values, beta=parts[0].beta)
    out.lo, out.hi = min(p.lo for p in parts), max(p.hi for p in parts)
    out.masked = any(p.masked for p in parts)
    out.tails = tails_.merged([p.tails for p in parts])
    out.samples = [s for p in parts for s in p.samples]
    amax = [p.channel_amax for p in parts if p.channel_amax is not None]
    out.channel_amax = np.maximum.reduce(amax) if amax and len({a.shape for a in amax}) == 1 else None
    return out


def _columns(ufunc: np.ufunc, cols: np.ndarray, width: int = 1024) -> np.ndarray:
    """`ufunc.reduce(cols, axis=0)` of an [N, C] array, folded so that each row reduced is
    about `width` values long (numpy reduces a few short columns slowly)."""
    n, c = cols.shape
    m = max(1, width // c)
    k = n // m * m
    head = ufunc.reduce(cols[:k].reshape(-1, m * c), axis=0).reshape(m, c) if k else cols[:0]
    return ufunc.reduce(np.concatenate([head, cols[k:]]), axis=0)


def _qdq_error(values: np.ndarray, lo: float, hi: float) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255.0
    zp = np.clip(np.round(-128 - lo / scale), -128, 127)
    q = np.clip(np.round(values / scale) + zp, -128, 127)
    return float(np.mean(((q - zp) * scale - values) ** 2))


def _mse_range(values: np.ndarray, lo: float, hi: float) -> Range:
    best, best_err = Range(lo, hi), _qdq_error(values, lo, hi)
    for frac in np.linspace(0.3, 0.99, 24):
        err = _qdq_error(values, lo * frac, hi * frac)
        if err < best_err:
            best, best_err = Range(lo * frac, hi * frac), err
    return best


BINS = 2048        # TensorRT's histogram
STRIDE = 16        # candidate thresholds: every STRIDE-th bin edge from the levels' count on


def entropy_threshold(magnitudes: np.ndarray, amax: float, levels: int = 128) -> float:
    """TensorRT's entropy calibration: of clipping thresholds T over a BINS-bin histogram of
    |x| on [0, amax], the one whose clipped distribution (outliers folded into the last bin)
    loses the least information, in KL divergence, when merged into `levels` equal
    quantisation bins and expanded back over the non-empty source bins."""
    if not amax > 0 or magnitudes.size == 0:
        return float(amax)
    hist = np.histogram(magnitudes, BINS, (0.0, amax))[0].astype(np.float64)
    best, best_kl = BINS, np.inf
    for i in [*range(levels, BINS, STRIDE), BINS]:
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        if p.sum() == 0:
            continue
        edges = (np.arange(levels) * i) // levels
        nonzero = (hist[:i] > 0).astype(np.float64)
        merged, count = np.add.reduceat(hist[:i], edges), np.add.reduceat(nonzero, edges)
        per = np.divide(merged, count, out=np.zeros_like(merged), where=count > 0)
        q = np.repeat(per, np.diff(np.append(edges, i))) * nonzero
        kl = _kl(p / p.sum(), q / max(q.sum(), 1e-300))
        if kl < best_kl:
            best, best_kl = i, kl
    return float(best * amax / BINS)


def _kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(p || q) with q smoothed where p has mass and q none (else infinite)."""
    q = np.where((q == 0) & (p > 0), eps, q)
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def _entropy_range(values: np.ndarray, lo: float, hi: float) -> Range:
    """The entropy calibrator adapted to asymmetric int8: the threshold T comes from KL on the
    larger-magnitude side's |x| (with 255 levels if the tensor is one-sided, as int8 then
    spends every code on that side, else 128); the other side keeps its extreme, within T."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo == hi:
        return Range(lo, hi)
    if hi >= -lo:
        t = entropy_threshold(values[values > 0], hi, 255 if lo >= 0 else 128)
        return Range(float(max(lo, -t)), t)
    t = entropy_threshold(-values[values < 0], -lo, 255 if hi <= 0 else 128)
    return Range(-t, float(min(hi, t)))


def whole_tensors(g: Graph) -> frozenset[str]:
    """The activations whose extremes are the answer, which calibration "hybrid" keeps whole:
    the graph's inputs and outputs, what a softmax or an arg max reads (class logits,
    regression outputs: their rare large values decide the result) and what a host operator
    reads (its float kernel need not tolerate a clipped input: Mod, TopK, GridSample)."""
    read = {n.inputs[0] for n in g.nodes if n.op in (Op.SOFTMAX, Op.ARG_MAX)}
    host = {t for n in g.nodes if n.op in (Op.HOST_FLOAT, Op.HOST_TFLITE) for t in n.inputs}
    return frozenset(g.inputs) | frozenset(g.outputs) | read | host


def dense_map(g: Graph) -> bool:
    """Has the graph an output that is a dense prediction map (4-D with H, W > 1, NHWC or, as
    an ONNX model's output keeps it, NCHW: a text / region detector's probability map, a
    segmentation mask)?"""
    return any(len(s := g.tensors[o].shape) == 4 and s[2] > 1 and (s[1] > 1 or s[3] > 1) for o in g.outputs)


def auto_method(g: Graph) -> str:
    """Calibration "auto" (the default): "hybrid" for a model with a dense prediction map
    (`dense_map`), "minmax" otherwise; chosen by measurement on the model corpus
    (docs/numerics.md, "Calibration default")."""
    return "hybrid" if dense_map(g) else "minmax"


def _random_input(g: Graph, name: str, rng: np.random.Generator) -> np.ndarray:
    """Standard normal floats; integer inputs (token ids) as valid row indices of every
    constant table they index (0 or 1 where they index none), held as float32 like the
    calibration data's."""
    t = g.tensors[name]
    if t.dtype is DType.F32:
        return rng.standard_normal(t.shape).astype(np.float32)
    rows = [g.tensors[n.inputs[0]].shape[0] for n in g.nodes
            if n.op is Op.GATHER and n.inputs[1:2] == (name,) and g.tensors[n.inputs[0]].is_const]
    return rng.integers(0, min(rows, default=2), t.shape).astype(np.float32)


class RandomFeeds(Sequence):
    """`n` random samples, each made when it is read (from its own seed), so that no more than
    one is held at a time: a model's inputs may be large."""

    def __init__(self, g: Graph, n: int, seed: int):
        self.g, self.n, self.seed = g, n, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng((self.seed, i % self.n))
        return {name: _random_input(self.g, name, rng) for name in self.g.inputs}


def calibration_feeds(g: Graph, calibration: dict[str, np.ndarray] | None,
                      n_random: int = 8, seed: int = 0) -> Sequence[dict[str, np.ndarray]]:
    """Split `calibration` ({input: [N, *shape]}, or [N, *shape[1:]] for a batch-1 input) into
    per-sample feeds; random data if None."""
    if calibration is None:
        return RandomFeeds(g, n_random, seed)
    missing = [n for n in g.inputs if n not in calibration]
    if missing:
        raise InputError(f"calibration data has no array for input(s) {missing}; "
                         f"it has {sorted(calibration)}")
    counts, arrays = set(), {}
    for name in g.inputs:
        shape, arr = g.tensors[name].shape, np.asarray(calibration[name])
        if shape[:1] == (1,) and arr.ndim == len(shape) and arr.shape[1:] == shape[1:]:
            arr = arr[:, None]                     # N samples stacked along a batch-1 axis
        arrays[name] = arr
        if arr.shape[1:] != shape:
            raise InputError(f"calibration array {name!r} has shape {arr.shape}; expected [N, "
                             f"{', '.join(map(str, shape))}]")
        counts.add(arr.shape[0])
    if len(counts) != 1 or 0 in counts:
        raise InputError(f"calibration arrays need the same, non-zero sample count; got {sorted(counts)}")
    n = counts.pop()
    return [{name: np.asarray(arrays[name][i], np.float32) for name in g.inputs} for i in range(n)]


def softmax_inputs(g: Graph) -> dict[str, float]:
    """{tensor: beta} of what each softmax reads, through the reshapes and transposes before it
    (which share its quantisation)."""
    made = {o: n for n in g.nodes for o in n.outputs}
    out: dict[str, float] = {}
    for n in g.nodes:
        if n.op is Op.SOFTMAX:
            t: str | None = n.inputs[0]
            while t is not None and t not in out:
                out[t] = n.attrs.beta
                src = made.get(t)
                t = src.inputs[0] if src is not None and src.op in (Op.RESHAPE, Op.TRANSPOSE) else None
    return out


def observe(g: Graph, feeds: Iterable[dict[str, np.ndarray]], keep: int = 4,
            hold: Values = "sample", expected: int = 1,
            outputs: list[dict] | None = None) -> tuple[dict[str, Observer], list[dict]]:
    """Observers for every non-constant tensor, and the float values of the first `keep`
    samples; `outputs` receives each sample's graph outputs. Each activation is observed as
    the float run makes it, so that a sample not kept holds no more than the run's live
    tensors; `hold`: what observers keep beside the extremes (`values_for` a method), their
    tails exact for up to `expected` samples in all (runs of one calibration set merged)."""
    betas = softmax_inputs(g)
    observers = {name: Observer(i, hold, expected, betas.get(name)) for i, (name, t) in enumerate(g.tensors.items())
                 if not t.is_const and t.dtype is DType.F32}      # host-made integers keep their type
    order = {name: i for i, name in enumerate(g.tensors)}
    for tie in g.ties.groups:       # an unrolled loop's copies of a value: observed as one tensor (ir.ties)
        members = sorted(t for t in tie if t in observers)
        if len(members) > 1:
            shared = Observer(order[members[0]], hold, expected * len(members), betas.get(members[0]))
            observers.update({t: shared for t in members})

    def seen(name: str, value: np.ndarray) -> None:
        obs = observers.get(name)
        if obs is not None:
            obs.update(value)

    from ..kernels.float_exec import run_float     # (Range alone is the integer path's: no float runs)
    values: list[dict[str, np.ndarray]] = []
    for feed in feeds:
        out = run_float(g, feed, keep_all=len(values) < keep, visit=seen)
        if outputs is not None:
            outputs.append({name: out[name] for name in g.outputs})
        if len(values) < keep:
            values.append(out)
    return observers, values
