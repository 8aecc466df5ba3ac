"""Mixed int8 / int16 precision: which activations can be int16, which to widen, and how close
the quantised outputs are to float.

Units of widening are the groups of tensors that share one quantisation (quant.groups: a
reshape's input and output, a concat's operands, ...): a group is int16 as a whole. A set
of groups is *feasible* when every layer touching one of its tensors still runs on the NPU
(the compiler passes codegen's placement check, which asks codegen.wide.int16_support for
layers with int16 tensors), so nothing falls to the host. `widest` is the largest feasible
set (precision "int16"); its *blocks* (groups joined by a layer they both touch) are each
feasible alone, so any union of blocks is too. `greedy` (precision "auto") widens blocks,
noisiest layer first, until the measured output SQNR reaches the target.

Output accuracy is measured, not modelled: the integer graph and the float graph run on the
same samples and the dequantised outputs are compared (`accuracy`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from ..ir.graph import DType, Graph
from .groups import shared_groups

HELDOUT_FRACTION = 0.2      # of the calibration samples, kept out of calibration to measure accuracy
HELDOUT_MAX = 32            # at most this many held-out samples (the integer reference is slow)


def heldout_count(n: int) -> int:
    """How many of `n` calibration samples are held out: 20%, at least 1 when n >= 2, at most
    HELDOUT_MAX (the last ones; the others calibrate)."""
    return 0 if n < 2 else min(HELDOUT_MAX, max(1, round(HELDOUT_FRACTION * n)))


# ---- which tensors can be int16 --------------------------------------------------------------

Supported = Callable[[Graph, frozenset[str]], dict[str, str]]
"""(integer graph of a wide set, the wide set) -> {layer: why the NPU cannot run it} for the
layers touching a wide tensor that the NPU refuses."""


def units(g: Graph, exclude: frozenset[str] = frozenset()) -> list[frozenset[str]]:
    """The float activation tensors of `g` (not constants, not `exclude`) in groups that
    share a quantisation, in graph order."""
    groups = shared_groups(g)
    out: dict[str, set[str]] = {}
    for name, t in g.tensors.items():
        if not t.is_const and t.dtype is DType.F32 and name not in exclude:
            out.setdefault(groups.find(name), set()).add(name)
    return [frozenset(u) for u in out.values()]


def widest(g: Graph, candidates: Sequence[frozenset[str]], base: frozenset[str],
           refused: Supported, quantise: Callable[[frozenset[str]], Graph]) -> list[frozenset[str]]:
    """The candidate groups that stay when every group touching a refused layer is dropped,
    repeatedly, until no layer is refused (each round drops at least one group)."""
    keep = list(candidates)
    while keep:
        wide = base.union(*keep)
        bad = refused(quantise(wide), wide)
        if not bad:
            break
        touched = {t for node in g.nodes if node.name in bad for t in (*node.inputs, *node.outputs)}
        kept = [u for u in keep if not u & touched]
        if len(kept) == len(keep):      # refused for a reason the wide groups do not cause
            break
        keep = kept
    return keep


def blocks(g: Graph, groups: Sequence[frozenset[str]]) -> list[frozenset[str]]:
    """`groups` joined where one layer touches two of them: each block is int16 or not as a whole."""
    owner = {t: i for i, u in enumerate(groups) for t in u}
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for node in g.nodes:
        ids = sorted({owner[t] for t in (*node.inputs, *node.outputs) if t in owner})
        for i in ids[1:]:
            parent[find(i)] = find(ids[0])
    out: dict[int, set[str]] = {}
    for i, u in enumerate(groups):
        out.setdefault(find(i), set()).update(u)
    return [frozenset(b) for b in out.values()]


@dataclass(frozen=True)
class Choice:
    wide: frozenset[str]        # the tensors widened to int16 (besides those int16 anyway)
    sqnr_db: float              # measured worst output SQNR with them
    int8_sqnr_db: float         # the same, all int8
    steps: tuple[tuple[str, float], ...]    # (block's worst layer, SQNR after widening it), in order


def greedy(g: Graph, candidates: Sequence[frozenset[str]], noise_db: Mapping[str, float],
           measure: Callable[[frozenset[str]], float], target_db: float) -> Choice:
    """Widen blocks, the one holding the noisiest layer (per-layer SQNR `noise_db`) first,
    until `measure(wide)` (the worst output SQNR) reaches `target_db` or nothing is left."""
    producer = {t: node.name for node in g.nodes for t in node.outputs}

    def worst(b: frozenset[str]) -> tuple[float, str]:
        layers = [producer[t] for t in b if t in producer] or ["(input)"]
        return min((noise_db.get(n, np.inf), n) for n in layers)
    order = sorted(candidates, key=worst)
    start = measure(frozenset())
    wide: frozenset[str] = frozenset()
    now, steps = start, []
    for b in order:
        if now >= target_db:
            break
        wide |= b
        now = measure(wide)
        steps.append((worst(b)[1], now))
    return Choice(wide, now, start, tuple(steps))


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True)
class Precision:
    mode: str                   # auto | int16
    min_sqnr: float             # auto's target (dB)
    measured_on: str            # the samples the output SQNR was measured on, in words
    choice: Choice

    @property
    def wide(self) -> frozenset[str]:
        return self.choice.wide

    def to_json(self) -> dict:
        c = self.choice
        return {"mode": self.mode, "min_sqnr": self.min_sqnr, "measured_on": self.measured_on,
                "int8_sqnr_db": _finite(c.int8_sqnr_db), "sqnr_db": _finite(c.sqnr_db),
                "target_met": bool(c.sqnr_db >= self.min_sqnr), "tensors": sorted(c.wide),
                "steps": [{"layer": n, "sqnr_db": _finite(v)} for n, v in c.steps]}


# ---- how close the outputs are ---------------------------------------------------------------

def looks_like_scores(shape: tuple[int, ...]) -> bool:
    """Class scores: more than one entry on the last axis, and every axis but the first and
    the last of size 1 ([N, C], [N, 1, 1, C])."""
    return len(shape) >= 2 and shape[-1] > 1 and all(d == 1 for d in shape[1:-1])


@dataclass(frozen=True)
class OutputAccuracy:
    output: str
    cosine: float
    sqnr_db: float
    argmax_agreement: float | None      # None: the output does not look like class scores

    def to_json(self) -> dict:
        return {"output": self.output, "cosine": self.cosine,
                "sqnr_db": _finite(self.sqnr_db),
                "argmax_agreement": self.argmax_agreement}


@dataclass(frozen=True)
class Accuracy:
    samples: int                # held-out samples measured on (0: none, see note)
    note: str                   # why there are no numbers ("" when there are)
    outputs: tuple[OutputAccuracy, ...]

    def to_json(self) -> dict:
        return {"heldout_samples": self.samples, "note": self.note, "outputs": [o.to_json() for o in self.outputs]}


def db(signal: float, noise: float) -> float:
    if noise <= 0:
        return float("inf")
    return float("-inf") if signal <= 0 else float(10 * np.log10(signal / noise))


def compare(name: str, ref: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> OutputAccuracy:
    """Cosine and SQNR of `got` against `ref` over all samples together, and the share of rows
    whose argmax agrees when the output looks like class scores."""
    f = np.concatenate([np.asarray(r, np.float64).ravel() for r in ref])
    q = np.concatenate([np.asarray(x, np.float64).ravel() for x in got])
    norm = float(np.linalg.norm(f) * np.linalg.norm(q))
    cosine = float(f @ q / norm) if norm > 0 else float(np.array_equal(f, q))
    agree = None
    shape = tuple(np.shape(ref[0]))
    if looks_like_scores(shape):
        hits = [np.argmax(np.reshape(r, (-1, shape[-1])), -1) == np.argmax(np.reshape(x, (-1, shape[-1])), -1)
                for r, x in zip(ref, got)]
        agree = float(np.mean(np.concatenate(hits)))
    return OutputAccuracy(name, cosine, db(float(f @ f), float((f - q) @ (f - q))), agree)


def accuracy(outputs: Sequence[str], ref: Sequence[Mapping[str, np.ndarray]],
             got: Sequence[Mapping[str, np.ndarray]], note: str = "") -> Accuracy:
    """Per output, `got` against `ref` (one mapping per sample); no samples: `note` says why."""
    if not ref:
        return Accuracy(0, note, ())
    return Accuracy(len(ref), "", tuple(compare(n, [r[n] for r in ref], [x[n] for x in got]) for n in outputs))
