"""Mixed int8 / int16 precision: which activations can be int16, which to widen, and how close
the quantised outputs are to float.

Units of widening are the groups of tensors that share one quantisation (quant.groups: a
reshape's input and output, a concat's operands, ...): a group is int16 as a whole. A set
of groups is *feasible* when every layer touching one of its tensors still runs on the NPU
(the compiler passes codegen's placement check, which asks codegen.wide.int16_support for
layers with int16 tensors), so nothing falls to the host. `widest` is the largest feasible
set (precision "int16"); its *blocks* (groups joined by a layer they both touch) are each
feasible alone, so any union of blocks is too. `greedy` (precision "auto") widens the
shortest prefix of the blocks, noisiest layer first, whose measured worst output SQNR
(`worst_sqnr`: outputs without a signal left out) reaches the target; when even all widened
misses it, the shortest prefix on which every output is within UNREACHED_TOLERANCE_DB of its
own SQNR with all widened (`qualifies`; both with the fold that costs the output most left
out, quant.fold_sqnr), so that an output no widening improves does not stop the others.

Output accuracy is measured, not modelled: the integer graph and the float graph run on the
same samples and the dequantised outputs are compared (`accuracy`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from ..ir.graph import DType, Graph, Op
from .fold_sqnr import Measurement
from .groups import Groups, shared_groups

HELDOUT_FRACTION = 0.2      # of the calibration samples, kept out of calibration to measure accuracy
HELDOUT_MAX = 32            # at most this many held-out samples (the integer reference is slow)


def heldout_count(n: int) -> int:
    """How many of `n` calibration samples are held out: 20%, at least 1 when n >= 2, at most
    HELDOUT_MAX (the last ones; the others calibrate)."""
    return 0 if n < 2 else min(HELDOUT_MAX, max(1, round(HELDOUT_FRACTION * n)))


def folds(n: int) -> list[range]:
    """The held-out folds of `n` calibration samples, in order: runs of heldout_count(n)
    samples back from the last, as many as fit in n and in HELDOUT_MAX samples in all (4
    samples: each alone; 10: five pairs; 1000: the last 32). Each fold is measured on the
    graph calibrated on every other sample, so all folds together measure up to HELDOUT_MAX
    samples none of which its graph saw."""
    k = heldout_count(n)
    count = max(1, min(n // k, HELDOUT_MAX // k)) if k else 0
    return [range(n - (i + 1) * k, n - i * k) for i in reversed(range(count))]


# ---- which tensors can be int16 --------------------------------------------------------------

Refused = Callable[[frozenset[str]], dict[str, str]]
"""(a wide set) -> {layer: why the NPU cannot run it} for the layers touching a wide tensor
that the NPU refuses (or the quantiser cannot give int16 params) when that set is int16."""


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
           refused: Refused) -> list[frozenset[str]]:
    """The candidate groups that stay when every group touching a refused layer is dropped,
    repeatedly, until no layer is refused (each round drops at least one group)."""
    keep = list(candidates)
    while keep:
        bad = refused(base.union(*keep))
        if not bad:
            break
        touched = {t for node in g.nodes if node.name in bad for t in (*node.inputs, *node.outputs)}
        kept = [u for u in keep if not u & touched]
        if len(kept) == len(keep):      # refused for a reason the wide groups do not cause
            break
        keep = kept
    return keep


def blocks(g: Graph, groups: Sequence[frozenset[str]]) -> list[frozenset[str]]:
    """`groups` joined where a layer other than a conv / FC touches two of them: each block is
    int16 or not as a whole. A conv or FC with one side wide runs 16x8 between requantising
    boundaries (quant.wide.widen_mxu_boundaries), so it does not join its input and output."""
    owned = {t for u in groups for t in u}
    joined = Groups()
    for u in groups:
        first = next(iter(u))
        for t in u:
            joined.union(t, first)
    from .wide import MXU_16X8      # (quant.wide loads the reference executor: not on a TFLite compile's path)
    for node in g.nodes:
        if node.op in MXU_16X8:
            continue
        touched = [t for t in (*node.inputs, *node.outputs) if t in owned]
        for t in touched[1:]:
            joined.union(t, touched[0])
    out: dict[str, set[str]] = {}
    for u in groups:
        out.setdefault(joined.find(next(iter(u))), set()).update(u)
    return [frozenset(b) for b in out.values()]


PerOutput = Mapping[str, float]
"""Output -> its measured SQNR (dB), the outputs `counted_sqnr` counts."""


@dataclass(frozen=True)
class Choice:
    wide: frozenset[str]        # the tensors widened to int16 (besides those int16 anyway)
    sqnr_db: float              # measured worst output SQNR with them
    int8_sqnr_db: float         # the same, all int8
    steps: tuple[tuple[str, float], ...]    # per prefix measured: (its last block's worst layer, SQNR)
    cost: float = 0.0           # estimated extra cycles of the widening (widening_cost)
    outputs: tuple[tuple[str, float], ...] = ()     # per output counted: its SQNR with `wide` (sqnr_db: the least)
    trimmed: tuple[tuple[str, float], ...] = ()     # the same, the fold that costs each output most left out

    def per_output(self) -> dict[str, float]:
        """`outputs` as a mapping; {"": sqnr_db} when not measured per output."""
        return dict(self.outputs) or {"": self.sqnr_db}

    def judged(self) -> dict[str, float]:
        """Per output what goals, prefixes and roundings are judged on (quant.fold_sqnr):
        `trimmed`, or `per_output` when not measured per fold."""
        return dict(self.trimmed) or self.per_output()


UNREACHED_TOLERANCE_DB = 1.0   # target out of reach: every output within this of its own SQNR all widened
ROUNDING_MARGIN_DB = 1.0       # no rounding reaches the target: another than the first must gain this on an output
                               # (ppocr-v5-rec: GPTQ +0.6 dB on the folds, 1 of 3 lines read on held-out images)


def goals(full: PerOutput, target_db: float) -> dict[str, float]:
    """Per output, the SQNR a prefix must reach, given `full` (each output's SQNR with every
    block widened): the target when all widened meets it on every output; else
    min(target, full_o - UNREACHED_TOLERANCE_DB), so all widened always qualifies and an
    output no widening lifts asks only to stay within the tolerance of what it reads."""
    if min(full.values(), default=np.inf) >= target_db:
        return {o: target_db for o in full}
    return {o: min(target_db, v - UNREACHED_TOLERANCE_DB) for o, v in full.items()}


def qualifies(measured: PerOutput, goal: PerOutput) -> bool:
    """Every output reaches its goal (an output not measured counts as -inf)."""
    return all(measured.get(o, -np.inf) >= v for o, v in goal.items())


@dataclass(frozen=True)
class Rates:
    """What an arch does per cycle, for the widening cost estimate: MXU MACs and VPU lanes."""
    macs: int = 256             # npu-m: 16 x 16
    lanes: int = 16


def widening_cost(bg: Graph, wide: frozenset[str], rates: Rates = Rates()) -> float:
    """Estimated extra cycles of `bg` (a graph with its requantising boundaries,
    quant.wide.widen_mxu_boundaries) with `wide` int16: a 16x8 conv / FC is a second MXU pass
    over its MACs; every other layer touching a wide tensor (each boundary QUANTIZE too) a
    VPU pass over its output's elements (int16 moves twice the bytes)."""
    from .wide import MXU_16X8
    total = 0.0
    for node in bg.nodes:
        if not any(t in wide for t in (*node.inputs, *node.outputs)):
            continue
        out = bg.tensors[node.outputs[0]]
        size = float(np.prod(out.shape))
        if node.op in MXU_16X8:     # MACs = weights x output positions (OHWI, [1, kh, kw, C], [out, in])
            total += float(np.prod(bg.tensors[node.inputs[1]].shape)) * size / max(1, out.shape[-1]) / rates.macs
        else:
            total += size / rates.lanes
    return total


def _least(v: PerOutput) -> float:
    return min(v.values(), default=float("inf"))


def greedy(g: Graph, candidates: Sequence[frozenset[str]], noise_db: Mapping[str, float],
           measure: Callable[[frozenset[str]], Measurement | PerOutput | float], target_db: float,
           rank: Callable[[frozenset[str]], float] | None = None,
           cost: Callable[[frozenset[str]], float] | None = None) -> Choice:
    """Blocks in order of their noisiest layer (per-layer SQNR `noise_db`), or of `rank`
    (highest first: e.g. measured gain per cycle); a prefix whose `measure` (per output its
    SQNR pooled over the folds and with the worst fold left out, quant.fold_sqnr; or per
    output one SQNR; or one number: the worst) qualifies, found by bisection (the shortest
    qualifying when the SQNRs grow with the prefix). A prefix qualifies (`qualifies`, `goals`)
    when its worst output reaches `target_db` pooled, or, when even every block widened
    misses the target pooled, when every output is within UNREACHED_TOLERANCE_DB of its own
    SQNR all widened (or at the target), both with the worst fold left out: the int16 cycles
    buy no output more than that, and one fold on which every program reads badly neither
    sets the goals nor passes a prefix. Of the prefixes measured that qualify, the shortest,
    or with `cost` the cheapest (boundaries make a longer prefix cheaper at times: all
    widened has none)."""
    producer = {t: node.name for node in g.nodes for t in node.outputs}

    def worst(b: frozenset[str]) -> tuple[float, str]:
        layers = [producer[t] for t in b if t in producer] or ["(input)"]
        return min((noise_db.get(n, np.inf), n) for n in layers)
    order = sorted(candidates, key=worst)
    if rank is not None:
        order.sort(key=rank, reverse=True)      # stable: equal ranks stay noisiest first
    memo: dict[int, Measurement] = {}

    def at(k: int) -> Measurement:
        if k not in memo:
            memo[k] = Measurement.of(measure(frozenset().union(*order[:k])))
        return memo[k]
    start = at(0)
    if _least(start.pooled) < target_db and order:
        full = at(len(order))
        reached = _least(full.pooled) >= target_db

        def judged(m: Measurement) -> Mapping[str, float]:
            return m.pooled if reached else m.trimmed
        goal = goals(judged(full), target_db)

        def ok(k: int) -> bool:
            return qualifies(judged(at(k)), goal)
        lo, hi = 0, len(order)      # ok(hi); not ok(lo) unless lo is the answer
        while not ok(lo) and hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        k = lo if ok(lo) else hi
        if cost is not None:
            k = min((i for i, v in memo.items() if qualifies(judged(v), goal)),
                    key=lambda i: (cost(frozenset().union(*order[:i])), i))
    else:
        k = 0
    steps = tuple((worst(order[i - 1])[1], _least(v.pooled)) for i, v in sorted(memo.items()) if i > 0)
    per = at(k)
    named = set(per.pooled) != {""}
    return Choice(frozenset().union(*order[:k]), _least(per.pooled), _least(start.pooled), steps,
                  outputs=tuple(per.pooled.items()) if named else (),
                  trimmed=tuple(per.trimmed.items()) if named else ())


def nsr(db_value: float) -> float:
    """A noise-to-signal power ratio from an SQNR in dB (inf dB: 0)."""
    return 0.0 if db_value == np.inf else float(10 ** (-db_value / 10))


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True)
class Precision:
    mode: str                   # auto | int16
    min_sqnr: float             # auto's target (dB)
    measured_on: str            # the samples the output SQNR was measured on, in words
    choice: Choice
    rounding: str = "nearest"   # the int8 weights' rounding: nearest | gptq (quant.gptq) | sequential (quant.gptq_seq)

    @property
    def wide(self) -> frozenset[str]:
        return self.choice.wide

    def to_json(self) -> dict:
        c = self.choice
        return {"mode": self.mode, "min_sqnr": self.min_sqnr, "measured_on": self.measured_on,
                "rounding": self.rounding,
                "int8_sqnr_db": _finite(c.int8_sqnr_db), "sqnr_db": _finite(c.sqnr_db),
                "target_met": bool(c.sqnr_db >= self.min_sqnr), "tensors": sorted(c.wide),
                "steps": [{"layer": n, "sqnr_db": _finite(v)} for n, v in c.steps],
                "outputs_sqnr_db": {o: _finite(v) for o, v in c.outputs},
                "outputs_sqnr_db_trimmed": {o: _finite(v) for o, v in c.trimmed}}


def preferred(candidates: Sequence[Precision]) -> Precision:
    """Of `auto`'s choices under each weight rounding (the first: round-to-nearest), the one
    to ship: of those meeting min_sqnr the least estimated cost (the first on a tie). When
    none does, per output against the best of that output over the candidates, each with the
    fold that costs it most left out (`Choice.judged`, quant.fold_sqnr): the first whose SQNR
    is within ROUNDING_MARGIN_DB of the best on every output (the folds are few samples: a
    smaller gain is noise, and the earlier rounding is the simpler); when no candidate is, the
    least total shortfall (the sum over the outputs of how far each is below its best, in dB;
    the first on a tie)."""
    met = [p for p in candidates if p.choice.sqnr_db >= p.min_sqnr]
    if met:
        return min(met, key=lambda p: p.choice.cost)
    per = [p.choice.judged() for p in candidates]
    names = {o for v in per for o in v}
    best = {o: max(v.get(o, -np.inf) for v in per) for o in names}

    def short(v: Mapping[str, float]) -> list[float]:
        return [best[o] - v.get(o, -np.inf) if best[o] > v.get(o, -np.inf) else 0.0 for o in names]
    within = [p for p, v in zip(candidates, per) if all(s < ROUNDING_MARGIN_DB for s in short(v))]
    if within:
        return within[0]
    return min(zip(candidates, per), key=lambda pv: sum(short(pv[1])))[0]


# ---- how close the outputs are ---------------------------------------------------------------

def looks_like_scores(shape: tuple[int, ...]) -> bool:
    """The shape of class scores: more than one entry on the last axis, and every axis but the
    first and the last of size 1 ([N, C], [N, 1, 1, C])."""
    return len(shape) >= 2 and shape[-1] > 1 and all(d == 1 for d in shape[1:-1])


_PASS = (Op.RESHAPE, Op.TRANSPOSE, Op.QUANTIZE, Op.DEQUANTIZE)


def score_outputs(g: Graph) -> frozenset[str]:
    """The outputs taken for class scores (argmax over the last axis, per row): a softmax's
    output (through reshapes, transposes and requantisation) of any shape with a last axis > 1
    ([1, T, C] per-step scores of a recogniser too), or the model's only output shaped like
    class scores (`looks_like_scores`: a logits classifier). A [1, 63] landmark vector
    beside other outputs is not."""
    producer = {t: node for node in g.nodes for t in node.outputs}

    def softmaxed(t: str) -> bool:
        node = producer.get(t)
        while node is not None and node.op in _PASS:
            node = producer.get(node.inputs[0])
        return node is not None and node.op is Op.SOFTMAX
    shape = {o: tuple(g.tensors[o].shape) for o in g.outputs}
    return frozenset(o for o in g.outputs if (softmaxed(o) and len(shape[o]) >= 2 and shape[o][-1] > 1)
                     or (looks_like_scores(shape[o]) and len(g.outputs) == 1))


def has_signal(ref: Sequence[np.ndarray]) -> bool:
    """At least two float values over the samples, not all equal (to 1e-6 of the largest): an
    output that is one number (a [1, 1] score on one held-out sample) or constant has no
    signal for a noise ratio to mean anything."""
    f = np.concatenate([np.asarray(r, np.float64).ravel() for r in ref])
    return f.size >= 2 and float(np.ptp(f)) > 1e-6 * float(np.max(np.abs(f)))


@dataclass(frozen=True)
class OutputAccuracy:
    output: str
    cosine: float
    sqnr_db: float
    argmax_agreement: float | None      # None: not class scores (score_outputs)
    signal: bool = True                 # has_signal: counted in the worst output SQNR

    def to_json(self) -> dict:
        return {"output": self.output, "cosine": self.cosine,
                "sqnr_db": _finite(self.sqnr_db),
                "argmax_agreement": self.argmax_agreement, "in_worst_sqnr": self.signal}


def counted_sqnr(outputs: Sequence[OutputAccuracy]) -> dict[str, float]:
    """Per output the SQNR precision "auto" targets: the outputs that have a signal
    (has_signal), or all when none has."""
    counted = [o for o in outputs if o.signal] or list(outputs)
    return {o.output: o.sqnr_db for o in counted}


def worst_sqnr(outputs: Sequence[OutputAccuracy]) -> float:
    """The least of `counted_sqnr`; +inf without outputs."""
    return min(counted_sqnr(outputs).values(), default=float("inf"))


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


def compare(name: str, ref: Sequence[np.ndarray], got: Sequence[np.ndarray], scores: bool = False) -> OutputAccuracy:
    """Cosine and SQNR of `got` against `ref` over all samples together, and when `scores`
    (class scores) the share of rows whose argmax agrees."""
    f = np.concatenate([np.asarray(r, np.float64).ravel() for r in ref])
    q = np.concatenate([np.asarray(x, np.float64).ravel() for x in got])
    norm = float(np.linalg.norm(f) * np.linalg.norm(q))
    cosine = float(f @ q / norm) if norm > 0 else float(np.array_equal(f, q))
    agree = None
    shape = tuple(np.shape(ref[0]))
    if scores:
        hits = [np.argmax(np.reshape(r, (-1, shape[-1])), -1) == np.argmax(np.reshape(x, (-1, shape[-1])), -1)
                for r, x in zip(ref, got)]
        agree = float(np.mean(np.concatenate(hits)))
    return OutputAccuracy(name, cosine, db(float(f @ f), float((f - q) @ (f - q))), agree, has_signal(ref))


def accuracy(outputs: Sequence[str], ref: Sequence[Mapping[str, np.ndarray]],
             got: Sequence[Mapping[str, np.ndarray]], note: str = "",
             scores: frozenset[str] = frozenset()) -> Accuracy:
    """Per output, `got` against `ref` (one mapping per sample), argmax agreement on `scores`;
    no samples: `note` says why."""
    if not ref:
        return Accuracy(0, note, ())
    return Accuracy(len(ref), "", tuple(compare(n, [r[n] for r in ref], [x[n] for x in got], n in scores)
                                        for n in outputs))
