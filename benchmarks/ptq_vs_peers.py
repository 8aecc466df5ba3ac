"""Int8 quality against the peers: each model of the corpus quantised by npukit (default int8,
and with each quantisation option), onnxruntime's `quantize_static` (QDQ, per-channel, MinMax
and Percentile) and NNCF (`nncf.quantize`, ONNX backend, default preset, fast bias
correction), all on the corpus's calibration inputs, judged on its held-out inputs against
the float model with the corpus's task metric and min output cosine. Prints markdown.

    python benchmarks/ptq_vs_peers.py                        # the whole corpus
    python benchmarks/ptq_vs_peers.py --models ppocr-v4-rec,silero-vad --skip-nncf
    python benchmarks/ptq_vs_peers.py --json out.json
    python benchmarks/ptq_vs_peers.py --peers-from out.json --skip-auto --all-options   # npukit only, reusing the peers

Peers quantise ONNX models only (TFLite rows: npukit only). NNCF runs in its own venv
(`bash benchmarks/setup_peers.sh nncf`) through benchmarks/peers/nncf_driver.py; every peer
model is run by onnxruntime on the CPU in this process and scored by the same code.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from npukit.models.corpus import CORPUS, CorpusModel, calibration, evaluate, held_out, reference, score  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402

PEERS = Path(os.environ.get("NPUKIT_PEERS", Path.home() / ".cache" / "npukit" / "peers"))
NNCF_DRIVER = Path(__file__).resolve().parent / "peers" / "nncf_driver.py"
TOLERANCE = 0.01        # on a fraction metric, npukit may trail the better peer by this much

# (column, calibration method, compiler options) of each npukit variant: the default int8 (calibration
# "auto"), then (--all-options) each calibration method and quantisation option alone
NPUKIT = (("npukit int8", "auto", None),)
OPTIONS = (("calib minmax", "minmax", None), ("calib hybrid", "hybrid", None), ("calib percentile", "percentile", None),
           ("calib mse", "mse", None), ("bias_correction=auto", "minmax", {"bias_correction": "auto"}),
           ("equalize=auto", "minmax", {"equalize": "auto"}),
           ("flat_clip=auto", "auto", {"flat_clip": "auto"}), ("calib entropy", "entropy", None))
AUTO = "precision auto"     # --precision auto --min-sqnr 30 (mixed int8 / int16), with its cycles
AUTO_OPTIONS = {"precision": "auto", "min_sqnr": 30.0}
ORT = (("ort MinMax", "MinMax"), ("ort Percentile", "Percentile"))
NNCF = "nncf"


@dataclass(frozen=True)
class Cell:
    """One quantisation of one model against float: task metric, extra metrics, min cosine."""
    metric: float | None = None
    cosine: float | None = None
    extra: tuple[tuple[str, float], ...] = ()
    cycles: int | None = None
    error: str | None = None
    quantised: tuple[int, int] | None = None    # a peer's (quantised, all) Conv / MatMul / Gemm nodes


def samples(name: str, stacked: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The calibration inputs one by one as an ONNX session takes them (constant inputs
    bound, float inputs as float32)."""
    spec = CORPUS[name]
    n = len(next(iter(stacked.values())))
    out = []
    for i in range(n):
        feed = {k: v[i].astype(np.float32) if v.dtype.kind == "f" else v[i] for k, v in stacked.items()}
        out.append({**feed, **spec.input_values})
    return out


@lru_cache(maxsize=1)
def float_outputs(name: str) -> list[dict[str, np.ndarray]]:
    run = reference(fetch(name), CORPUS[name])
    return [run(f) for f in held_out(name)]


def score_onnx(name: str, model: Path) -> Cell:
    """A quantised ONNX model run by onnxruntime on the held-out inputs, against float."""
    spec = CORPUS[name]
    run_q = reference(model, spec)
    s = score(spec, float_outputs(name), [run_q(f) for f in held_out(name)])
    return Cell(s.metric, s.cosine, s.extra, quantised=mac_coverage(model))


def mac_coverage(path: Path) -> tuple[int, int]:
    """(quantised, all) Conv / ConvTranspose / MatMul / Gemm nodes of an ONNX model, subgraphs
    (If, Loop bodies) included; quantised: its second input comes from a DequantizeLinear."""
    import onnx
    graphs, done, total = [onnx.load(str(path)).graph], 0, 0
    while graphs:
        g = graphs.pop()
        dequantised = {o for node in g.node if node.op_type == "DequantizeLinear" for o in node.output}
        for node in g.node:
            graphs += [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
            graphs += [sub for a in node.attribute if a.type == onnx.AttributeProto.GRAPHS for sub in a.graphs]
            if node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
                total += 1
                done += len(node.input) > 1 and node.input[1] in dequantised
    return done, total


def ort_quantize(name: str, method: str, out: Path) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    calib = calibration(name)
    assert calib is not None
    feeds = iter(samples(name, calib))

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feeds, None)

    import onnx
    from onnx import version_converter
    model = onnx.load(str(fetch(name)))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    given = out.with_suffix(".given.onnx")      # per-channel QDQ needs opset 13 (axis of DequantizeLinear)
    onnx.save(version_converter.convert_version(model, 13) if opset < 13 else model, str(given))
    src = out.with_suffix(".pre.onnx")
    # both write scratch files (shape inference, external data) into the working directory
    with contextlib.chdir(out.parent), contextlib.redirect_stdout(io.StringIO()):  # and print calibrator settings
        try:    # onnxruntime's recommended pre-processing: shape inference, graph optimisation
            quant_pre_process(str(given), str(src))
        except Exception:       # noqa: BLE001 -- some graphs do not survive it: quantise as given
            src = given
        quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        calibrate_method=getattr(CalibrationMethod, method))


def nncf_quantize(name: str, out: Path) -> None:
    python = PEERS / "nncf" / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no NNCF venv at {python.parent.parent}: run bash benchmarks/setup_peers.sh nncf")
    calib = calibration(name)
    assert calib is not None
    feeds = samples(name, calib)
    npz = out.with_suffix(".npz")
    np.savez(npz, **{k: np.stack([f[k] for f in feeds]) for k in feeds[0]})
    done = subprocess.run([str(python), str(NNCF_DRIVER), str(fetch(name)), str(npz), str(out)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"nncf driver exited with {done.returncode}")


def peer(name: str, quantize: Callable[[Path], None]) -> Cell:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.q.onnx"
        try:
            quantize(out)
            return score_onnx(name, out)
        except Exception as exc:        # noqa: BLE001 -- a peer's failure is a finding
            return Cell(error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def run_model(name: str, arch: str, skip_nncf: bool, skip_auto: bool = False, variants=NPUKIT,
              peers: dict[str, Cell] | None = None) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for column, method, options in variants:
        r = evaluate(name, arch, method, options)
        cells[column] = (Cell(r.metric, r.cosine, r.extra, r.cycles) if r.error is None else Cell(error=r.error))
    if not skip_auto:
        r = evaluate(name, arch, "auto", AUTO_OPTIONS)
        cells[AUTO] = Cell(r.metric, r.cosine, r.extra, r.cycles) if r.error is None else Cell(error=r.error)
    if fetch(name).suffix != ".onnx":
        return cells
    if peers is not None:       # an earlier run's peer cells (--peers-from)
        return {**cells, **{k: c for k, c in peers.items() if k in (*dict(ORT), NNCF) and not (skip_nncf and k == NNCF)}}
    for column, method in ORT:
        cells[column] = peer(name, lambda out, m=method: ort_quantize(name, m, out))
    if not skip_nncf:
        cells[NNCF] = peer(name, lambda out: nncf_quantize(name, out))
    return cells


def verdict(spec: CorpusModel, cells: dict[str, Cell]) -> str:
    """Is npukit's default int8 at least as close to float as the better peer (within TOLERANCE
    on a fraction metric)?"""
    ours = cells["npukit int8"].metric
    theirs = [c.metric for k, c in cells.items() if k in (*dict(ORT), NNCF) and c.metric is not None
              and (c.quantised is None or c.quantised[0] > 0)]     # a peer that quantised no product: left out
    if ours is None or not theirs:
        return "n/a"
    best = max(theirs) if spec.metric.higher_is_better else min(theirs)
    fraction = spec.metric.higher_is_better and 0 <= best <= 1
    gap = (best - ours) if spec.metric.higher_is_better else (ours - best)
    return "yes" if gap <= (TOLERANCE if fraction else 0) + 1e-9 else f"**no** ({ours:.3f} vs {best:.3f})"


TARGET_COSINE = 0.99     # issue 13's "done when" for --precision auto --min-sqnr 30: min output cosine,
TARGET_POINT = 0.01      # a fraction metric within 1 point of float (float scores 1.0 against itself),
TARGET_PX = 2.0          # a landmark error within 2 pixels


def auto_verdict(spec: CorpusModel, c: Cell | None) -> str:
    """Does precision auto meet the target (TARGET_COSINE, and the task metric within a point
    or TARGET_PX of float)?"""
    if c is None or c.metric is None or c.cosine is None:
        return "n/a"
    hib = spec.metric.higher_is_better
    close = c.metric >= 1 - TARGET_POINT if hib else c.metric <= (TARGET_PX if "px" in spec.metric.name else 0.0)
    misses = ([f"cosine {c.cosine:.4f}"] if c.cosine < TARGET_COSINE else []) + ([] if close else [f"metric {c.metric:.3f}"])
    return "yes" if not misses else f"no ({', '.join(misses)})"


def cell_text(c: Cell | None) -> str:
    if c is None:
        return "n/a"
    if c.error is not None:
        return "error"
    extra = "".join(f", CER {v:.3f}" if n == "character error rate" else f", {n} {v:.3f}" for n, v in c.extra)
    partial = f" (q {c.quantised[0]}/{c.quantised[1]})" if c.quantised and c.quantised[0] < c.quantised[1] else ""
    return f"{c.metric:.3f}{extra} / {c.cosine:.4f}{partial}"


def cycles_text(c: Cell | None) -> str:
    return f" {c.cycles:,} |" if c is not None and c.cycles else " n/a |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated corpus models (default: all)")
    parser.add_argument("--arch", default="npu-m")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-nncf", action="store_true", help="leave NNCF out")
    parser.add_argument("--skip-auto", action="store_true", help="leave npukit's precision auto out")
    parser.add_argument("--all-options", action="store_true",
                        help="also a column for each calibration method and quantisation option alone")
    parser.add_argument("--peers-from", type=Path,
                        help="take the onnxruntime / NNCF cells from an earlier run's --json (peers are not rerun)")
    args = parser.parse_args(argv)
    variants = NPUKIT + (OPTIONS if args.all_options else ())
    earlier = {r["model"]: {k: Cell(**{**c, "extra": tuple(map(tuple, c["extra"])),
                                       "quantised": tuple(c["quantised"]) if c["quantised"] else None})
                            for k, c in r["cells"].items()}
               for r in json.loads(args.peers_from.read_text())} if args.peers_from else None
    import onnxruntime
    onnxruntime.set_default_logger_severity(3)     # no warnings about unused initialisers
    names = args.models.split(",") if args.models else list(CORPUS)
    unknown = [n for n in names if n not in CORPUS]
    if unknown:
        print(f"error: unknown corpus model(s) {', '.join(unknown)}; known: {', '.join(CORPUS)}", file=sys.stderr)
        return 2
    columns = [c for c, _, _ in variants] + ([] if args.skip_auto else [AUTO]) + [c for c, _ in ORT] + ([] if args.skip_nncf else [NNCF])
    print("Each cell: task metric (CER: character error rate) / min output cosine, against the float model;"
          " (q k/n): the peer quantised k of the model's n Conv / MatMul / Gemm nodes.\n")
    auto = "" if args.skip_auto else " auto cycles | auto meets target |"
    print(f"| model | task metric | {' | '.join(columns)} | npukit int8 cycles ({args.arch}) |{auto} npukit >= best peer |")
    print("|---" * (len(columns) + 4 + 2 * (not args.skip_auto)) + "|")
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    start = time.perf_counter()
    for name in names:
        spec = CORPUS[name]
        if spec.refused:
            blank = ' | ' * (len(columns) + 1 + 2 * (not args.skip_auto))
            print(f"| {name} | {spec.metric.name} | refused by contract{blank} n/a |", flush=True)
            continue
        cells = run_model(name, args.arch, args.skip_nncf, args.skip_auto, variants,
                          None if earlier is None else earlier.get(name, {}))
        errors += [f"- {name}, {k}: `{c.error}`" for k, c in cells.items() if c.error]
        ours = cells["npukit int8"]
        print(f"| {name} | {spec.metric.name} | {' | '.join(cell_text(cells.get(c)) for c in columns)} | "
              f"{f'{ours.cycles:,}' if ours.cycles else 'n/a'} |"
              f"{'' if args.skip_auto else cycles_text(cells.get(AUTO)) + ' ' + auto_verdict(spec, cells.get(AUTO)) + ' |'}"
              f" {verdict(spec, cells)} |", flush=True)
        results.append({"model": name, "metric": spec.metric.name, "higher_is_better": spec.metric.higher_is_better,
                        "verdict": verdict(spec, cells),
                        "auto_verdict": None if args.skip_auto else auto_verdict(spec, cells.get(AUTO)),
                        "cells": {k: asdict(c) for k, c in cells.items()}})
    if errors:
        print("\nErrors:\n" + "\n".join(errors))
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
