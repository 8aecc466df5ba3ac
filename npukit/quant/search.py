"""The search over which activations `--precision auto | int16` widens (quant.precision),
measuring each held-out fold (quant.precision.folds) on the graph calibrated without it. The NPU's placement check and the
integer reference come in as functions (`Support`, `Run`): they sit above this layer."""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, Graph, Node
from .fold_sqnr import Measurement, measurement
from .precision import (UNREACHED_TOLERANCE_DB, Choice, Precision, Rates, blocks, compare, counted_sqnr, greedy,
                        nsr, units, widening_cost, widest)
from .gptq import with_weights
from .quantize import quantize_graph
from .wide import MXU_16X8, layer_noise, widen_mxu_boundaries

Support = Callable[[Graph, Node], str]
"""(integer graph, layer) -> why the NPU cannot run it ("" when it can)."""
Run = Callable[[Graph, dict], dict[str, np.ndarray]]
"""(integer graph, float feed) -> its outputs as real numbers."""
Measured = list[tuple[dict, list[tuple[dict, dict]]]]
"""Per held-out fold: (the ranges calibrated without it, [(feed, float outputs)] of its samples)."""


def choose_precision(g: Graph, ranges, measured: Measured, stft: frozenset[str],
                     int8: Graph, values: list[dict], options, held: int, nfolds: int,
                     rates: Rates, support: Support, run: Run,
                     fold_weights: Sequence[Mapping[str, np.ndarray]] = (), rounding: str = "nearest") -> Precision:
    """The activations to widen to int16 (quant.precision): every group the NPU runs in int16
    ("int16"), or blocks of them in order of measured gain per estimated cycle, until the
    worst output SQNR reaches options.min_sqnr, or when all widened misses it, until every
    output is within quant.precision.UNREACHED_TOLERANCE_DB of its own SQNR all widened
    ("auto", quant.precision.greedy; the cheapest qualifying prefix by the cycle estimate,
    boundaries included). Placement is checked on the graph quantised with
    `ranges` with `support`; the SQNR is measured with `run` on `measured`: each fold on the
    graph calibrated without it, with its `fold_weights` if given (GPTQ's rounding on the
    other samples: `g` holds the rounding on all of them; `rounding` names it)."""
    def refused(wide: frozenset[str]) -> dict[str, str]:
        try:
            qg = quantised(wide, ranges)
        except UnsupportedOpError as e:     # e.g. a sigmoid with an int16 input and an int8 output
            return {n.name: str(e) for n in g.nodes if e.node in (n.name, *n.source)}
        return {n.name: why for n in qg.nodes
                if any(qg.tensors[t].dtype is DType.I16 for t in (*n.inputs, *n.outputs) if not qg.tensors[t].is_const)
                and (why := support(qg, n))}

    def quantised(wide: frozenset[str], rng: dict, weights: Mapping[str, np.ndarray] | None = None) -> Graph:
        # a conv / FC with one side wide runs 16x8 between requantising boundaries (as shipped)
        bg, bwide, copies = widen_mxu_boundaries(g, wide | stft)
        return quantize_graph(with_weights(bg, dict(weights or {})),
                              {**rng, **{c: rng[o] for c, o in copies.items()}}, bwide)

    evals = [e for _, ev in measured for e in ev]
    per_fold: list[Mapping[str, np.ndarray] | None] = [*fold_weights] or [None] * len(measured)

    def measure(wide: frozenset[str]) -> Measurement:
        # per output counted (quant.precision.counted_sqnr: those with a signal), pooled and trimmed
        got = [[run(quantised(wide, r, w), f) for f, _ in ev] for (r, ev), w in zip(measured, per_fold)]
        flat = [x for fold in got for x in fold]
        pooled = counted_sqnr([compare(n, [r[n] for _, r in evals], [x[n] for x in flat]) for n in g.outputs])
        return measurement(pooled, [[r for _, r in ev] for _, ev in measured], got)

    def cost(wide: frozenset[str]) -> float:
        bg, bwide, _ = widen_mxu_boundaries(g, wide | stft)
        return widening_cost(bg, bwide, rates)
    cands = widest(g, units(g, stft), stft, refused)
    everything = frozenset().union(*cands)
    if options.precision == "int16":
        full = measure(everything)
        choice = Choice(everything, min(full.pooled.values(), default=np.inf),
                        min(measure(frozenset()).pooled.values(), default=np.inf), (),
                        outputs=tuple(full.pooled.items()), trimmed=tuple(full.trimmed.items()))
    else:
        noise8 = layer_noise(int8, values)
        bg, bwide, copies = widen_mxu_boundaries(g, everything | stft)
        noise16 = layer_noise(quantize_graph(bg, {**ranges, **{c: ranges[o] for c, o in copies.items()}}, bwide),
                              [{**v, **{c: v[o] for c, o in copies.items()}} for v in values])
        base = cost(frozenset())

        def gain_per_cycle(b: frozenset[str]) -> float:
            # the noise (power ratio) its layers lose, each alone on calibration samples, per estimated cycle
            layers = {n.name for n in g.nodes if set(n.outputs) & b or (n.op in MXU_16X8 and n.inputs[0] in b)}
            gain = sum(max(0.0, nsr(noise8.get(n, np.inf)) - nsr(noise16.get(n, np.inf))) for n in layers)
            return gain / max(cost(b) - base, 1e-9)
        choice = greedy(g, blocks(g, cands), noise8, measure, options.min_sqnr, gain_per_cycle, cost)
    on = (f"{held} held-out sample{'s' * (held != 1)}" + (f" ({nfolds} folds)" if nfolds > 1 else "")) if held else \
        f"{len(evals)} calibration sample{'s' * (len(evals) != 1)} (none held out)"
    return Precision(options.precision, options.min_sqnr, on, replace(choice, cost=cost(choice.wide)), rounding)


def warn_unreached(p: Precision) -> None:
    """The one warning of `auto` when even every activation widened misses min_sqnr."""
    c = p.choice
    if p.mode == "auto" and c.sqnr_db < p.min_sqnr:
        warnings.warn(f"precision auto: output SQNR {c.sqnr_db:.1f} dB on {p.measured_on}, below min_sqnr "
                      f"{p.min_sqnr:g} dB even with every activation the NPU runs in int16 widened; "
                      f"{len(c.wide)} tensor(s) widened: every output within {UNREACHED_TOLERANCE_DB:g} dB of its "
                      f"own SQNR with all widened (or at min_sqnr) on the folds but its worst, at the least "
                      f"estimated cost",
                      stacklevel=3)
