"""The post-training quantisation stage of a float model: optimise, calibrate (with the
ranges each held-out fold would get), correct, choose int16 widenings, quantise, and measure
the result against float (the per-layer noise report and the accuracy summary). The float
path's stages load here, in `quantise`: a pre-quantised model needs none of them."""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .choices import Method
from .codegen.context import CompileOptions
from .errors import InputError, ModelError
from .ir.graph import Graph
from .progress import counted, stage
from .quant.quantize import attach_params, quantize_graph

if TYPE_CHECKING:
    from .measure import LayerSqnr
    from .quant.precision import Accuracy, Rates
    from .quant.scales import Scales


class RandomCalibrationWarning(UserWarning):
    """No calibration data: random inputs stand in."""


@dataclass(frozen=True)
class Quantised:
    graph: Graph                # the integer graph
    sqnr: list[LayerSqnr]       # per-layer noise, worst first (empty if not asked for)
    samples: int                # calibration samples used
    accuracy: Accuracy | None = None    # outputs against float on held-out samples (None: not measured)
    precision: dict | None = None       # precision auto / int16: what was widened (Precision.to_json)
    int8: Graph | None = None           # the all-int8 graph, when some activations were widened
    scales: Scales | None = None        # the ranges and widenings chosen, for other input shapes
    method: str = ""                    # the calibration method used (calibration "auto": the one it chose)


BIAS_SAMPLES = 8            # calibration samples whose float values bias correction measures on
REPORT_SAMPLES = 4          # ... the noise report and the int16 choice measure on


def refuse_precision(g: Graph, options: CompileOptions) -> None:
    if g.is_quantised and options.precision != "int8":
        raise InputError("model is already quantised; --precision applies to float models")


def quantise(g: Graph, calibration: dict[str, np.ndarray] | None = None, method: Method = "auto",
             sqnr: bool = True, int16_below_db: float | None = None, random_samples: int = 8,
             options: CompileOptions = CompileOptions(), int16_tensors: Iterable[str] = (),
             scales: Scales | None = None, rates: Rates | None = None, known: dict | None = None) -> Quantised:
    """Optimise, calibrate and quantise a float graph (a pre-quantised one only gets its
    integer params). `int16_below_db`: widen to int16 the tensors the per-layer noise report
    (quant.wide) finds below that SQNR; None keeps every activation int8. `int16_tensors`:
    tensors widened whatever their noise. A conv, depthwise or fully connected layer touching
    a widened tensor runs as 16x8, with a requantising QUANTIZE at each int8 / int16 boundary
    (quant.wide.widen_mxu_boundaries). Without
    calibration data, `random_samples` random inputs stand in, with a loud warning; with
    it, calibration that will fail is a CalibrationWarning naming the tensor (quant.calib_warnings).
    `options.equalize` / `options.bias_correction` = "auto": cross-layer equalisation before
    calibration, bias correction after it; `options.flat_clip` = "auto": ranges clipped where
    every reader is flat beyond a bound (quant.saturate). With two or more calibration samples, folds of
    20% of them (quant.precision.folds: up to 32 samples in all) are held out in turn: the
    accuracy summary and `options.precision` = "auto" measure each fold on the graph
    calibrated on the other samples; the graph returned is calibrated on all
    (docs/numerics.md). `rates`: the arch's, for auto's cycle estimate. `scales`: those of an earlier
    compile of the model at another input shape (`Quantised.scales`), applied instead of
    calibrating (no noise report, no int16 choice: the scales hold it); `known`: a memo of
    quantised constants kept by the caller across such compiles (quant.quantize)."""
    refuse_precision(g, options)
    if g.is_quantised:
        return Quantised(attach_params(g), [], 0)
    if scales is not None:
        return Quantised(scales.apply(g, options.equalize == "auto", known), [], 0, scales=scales)
    from .measure import run_dequantised, sqnr_report
    from .opt.equalize import equalize
    from .opt.pipeline import optimize
    from .quant.precision import Rates, accuracy, folds, score_outputs
    from .quant.scales import Scales
    from .quant.bias_correction import correct_biases
    from .quant.calib_warnings import warn_calibration
    from .quant.gptq import gptq_subsets, gptq_weights, with_weights
    from .quant.gptq_seq import sequential_subsets
    from .quant.calibrate import METHODS, auto_method, calibration_feeds, merged, observe, values_for, whole_tensors
    from .quant.groups import requantise_fixed_outputs
    from .quant.lstm_states import isolate_lstm_states
    from .quant.saturate import clip_to_readers
    from .quant.wide import choose_int16, layer_noise, magnitude_int16, widen_mxu_boundaries
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r} (choose from {', '.join(METHODS)})")
    stage("optimise")
    g = optimize(g)
    if options.equalize == "auto":
        g = equalize(g)
    if calibration is None:
        warnings.warn("no calibration data given: calibrating on RANDOM inputs; int8 accuracy will be "
                      "poor — pass --calib FILE.npz with real samples", RandomCalibrationWarning, stacklevel=3)
    feeds = calibration_feeds(g, calibration, n_random=random_samples)
    parts = folds(len(feeds)) if calibration is not None else []
    held = sum(map(len, parts))
    # float values kept for bias correction, the int16 choice and the precision search (else
    # none: a large model's activations of several samples need not be held at once; the
    # noise report reruns them)
    # precision auto measures GPTQ's rounding as a candidate (one fold at a time, rounded without it)
    try_gptq = options.precision == "auto" and options.gptq == "never" and options.bias_correction == "never"
    rounding = options.bias_correction == "auto" or options.gptq != "never" or try_gptq
    keep = BIAS_SAMPLES if rounding else \
        REPORT_SAMPLES if int16_below_db is not None or options.precision != "int8" else 0
    samples = iter(counted("calibrate", feeds))
    refs: list[dict] = []           # the held-out samples' float outputs, fold after fold
    used = auto_method(g) if method == "auto" else method
    kept_values = values_for(used)
    cuts = [0, *(p.start for p in parts[:1]), *(p.stop for p in parts)] if parts else [0, len(feeds)]
    chunks: list[dict] = []         # observers of each run of samples: those never held out, then each fold
    values: list[dict] = []
    try:
        for a, b in zip(cuts, cuts[1:]):
            obs, kept = observe(g, itertools.islice(samples, b - a), max(0, keep - len(values)), kept_values,
                                len(feeds), outputs=refs if chunks else None)
            chunks.append(obs)
            values += kept
    except ModelError as err:     # random integer inputs (indices, ids) the model cannot take
        if calibration is not None:
            raise
        raise ModelError(f"{err} (on the random calibration inputs: pass real samples with --calib)") from None
    observers = {name: merged([c[name] for c in chunks]) for name in chunks[0]}
    fold_evals = [list(zip((feeds[i] for i in p), refs[k - len(p):k]))
                  for p, k in zip(parts, itertools.accumulate(map(len, parts)))]

    whole = whole_tensors(g)

    def calibrated(m: str, folded: bool = True, names: Iterable[str] | None = None) -> tuple[dict, list[dict]]:
        # the ranges on all samples, and (folded) each fold's graph's: on every sample but the fold's
        def per(name: str) -> str:      # hybrid: percentile but where the extremes are the answer
            return m if m != "hybrid" else "minmax" if name in whole else "percentile"
        of = list(observers if names is None else names)
        return ({name: observers[name].range(per(name)) for name in of},
                [{name: merged([c[name] for j, c in enumerate(chunks) if j != i]).range(per(name)) for name in of}
                 for i in range(1, len(chunks) if folded else 1)])
    gptq: dict[str, np.ndarray] = {}
    rounded: dict[str, list[dict[str, np.ndarray]]] = {}     # auto's candidate roundings: all samples, then per fold
    if options.gptq == "auto":
        stage("gptq")
        gptq = gptq_weights(g, values)
    elif options.gptq == "sequential":
        stage("gptq")
        gptq = sequential_subsets(g, values, [range(len(values))])[0]
    elif try_gptq:      # on all samples, and per fold on the samples kept that are not the fold's
        stage("gptq")
        subsets = [range(len(values)), *([i for i in range(len(values)) if i not in p]
                                         for p in (parts if calibration is not None else []))]
        rounded = {"gptq": gptq_subsets(g, values, subsets), "sequential": sequential_subsets(g, values, subsets)}
    if options.bias_correction == "auto":       # measured against the float weights, after GPTQ
        g = correct_biases(with_weights(g, gptq), values, reference=g)
    else:
        g = with_weights(g, gptq)
    if rounding:
        values = values[:REPORT_SAMPLES]
    ranges, without = calibrated(used, sqnr or options.precision != "int8")
    if options.flat_clip == "auto":
        ranges, without = clip_to_readers(g, ranges), [clip_to_readers(g, r) for r in without]
    calibrated_g = g
    g, copies = requantise_fixed_outputs(g, ranges)      # fixed-range outputs kept out of shared scales
    g, lstm_copies, states = isolate_lstm_states(g)      # an LSTM's int8 hidden and int16 cell states apart
    if calibration is not None:     # (the int16 state tensors have codes for their outlying channels)
        warn_calibration(calibrated_g, {n: o for n, o in observers.items() if n not in states}, ranges)
    copies |= lstm_copies
    for r in (ranges, *without):
        r.update({copy: r[name] for copy, name in copies.items()})
    # the int16 recurrent state holds what the cell state reaches: its extremes, not a percentile
    exact, exact_without = calibrated("minmax", bool(without), {copies.get(t, t) for t in states})
    for r, e in zip((ranges, *without), (exact, *exact_without)):
        r.update({t: e[copies.get(t, t)] for t in states})
    values = [{**v, **{copy: v[name] for copy, name in copies.items()}} for v in values]
    stage("quantise")
    widenings: list[frozenset[str]] = []

    def widen(g: Graph, wide: frozenset[str]) -> tuple[Graph, frozenset[str]]:
        # a conv / FC touching a wide tensor runs 16x8 between requantising QUANTIZE copies
        widenings.append(wide)
        g, wide, copies = widen_mxu_boundaries(g, wide)
        for r in (ranges, *without):
            r.update({copy: r[name] for copy, name in copies.items()})
        values[:] = [{**v, **{copy: v[name] for copy, name in copies.items()}} for v in values]
        return g, wide
    forced = magnitude_int16(g) | states | frozenset(int16_tensors)
    if forced:
        g, forced = widen(g, forced)
    qg = int8 = quantize_graph(g, ranges, forced)
    if int16_below_db is not None:
        wide = choose_int16(qg, layer_noise(qg, values), int16_below_db)
        if wide:
            g, forced = widen(g, wide | forced)
            qg = quantize_graph(g, ranges, forced)
    # measured: each fold on the graph calibrated without it; else the calibration samples kept
    measured = list(zip(without, fold_evals)) if without else \
        [(ranges, [(f, {n: v[n] for n in g.outputs}) for f, v in zip(feeds, values)])]
    chosen = None
    fold_weights: list[dict[str, np.ndarray]] = [{}] * len(measured)     # each fold's GPTQ rounding when chosen
    if options.precision != "int8":
        from .codegen.partition import npu_support
        from .quant.precision import preferred
        from .quant.search import choose_precision, warn_unreached
        rates = rates or Rates()
        chosen = choose_precision(g, ranges, measured, forced, int8, values, options, held, len(without),
                                  rates, npu_support, run_dequantised)
        alts = {}
        for how, rw in rounded.items():
            gg = with_weights(g, rw[0])
            int8_r = quantize_graph(gg, ranges, forced)
            per_fold = rw[1:] if without else rw[:1]
            alts[how] = (choose_precision(gg, ranges, measured, forced, int8_r, values, options, held, len(without),
                                          rates, npu_support, run_dequantised, per_fold, how),
                         gg, int8_r, rw[0], per_fold)
        best = preferred([chosen, *(a[0] for a in alts.values())])
        for alt, gg, int8_r, weights, per_fold in alts.values():
            if best is alt:
                chosen, g, qg, int8, gptq, fold_weights = alt, gg, int8_r, int8_r, weights, per_fold
        warn_unreached(chosen)
        if chosen.wide:
            g, forced = widen(g, chosen.wide | forced)
            qg = quantize_graph(g, ranges, forced)
    report = sqnr_report(g, qg, feeds[:REPORT_SAMPLES], values or None) if sqnr else []
    acc = None
    if sqnr:
        note = ("no held-out samples (random calibration)" if calibration is None else
                "no held-out samples (one calibration sample)")
        got = [run_dequantised(fold_graph, f)       # each fold's graph quantised once, for its samples
               for (r, ev), w in zip(measured, fold_weights) if ev
               for fold_graph in [quantize_graph(with_weights(g, w), r, forced)] for f, _ in ev] if held else []
        acc = accuracy(qg.outputs, refs, got, note, score_outputs(qg))
    return Quantised(qg, report, len(feeds), acc, chosen.to_json() if chosen else None,
                     int8 if chosen and chosen.wide else None, Scales(dict(ranges), tuple(widenings), gptq), used)
