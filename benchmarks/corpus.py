"""The model corpus table: per model, compiled or the exact error, host operators with reasons,
agreement with the float model (min output cosine, task metric), cycles on the arch, compile
time and peak memory. Prints markdown (the table of docs/models.md).

    python benchmarks/corpus.py                      # every model of npukit.models.corpus
    python benchmarks/corpus.py face-landmark iris-landmark --arch npu-m
    python benchmarks/corpus.py --compile-only       # compile time and peak memory only
    python benchmarks/corpus.py --json out.json      # also the results as JSON
    python benchmarks/corpus.py hand-landmark-lite --precision auto --min-sqnr 30
                                                     # mixed int8 / int16 (issue 13): adds the
                                                     # count of activations widened to int16
    python benchmarks/corpus.py --calib-method percentile --accuracy-only
                                                     # another calibration; no compile in a
                                                     # fresh process (no compile time / memory)
    python benchmarks/corpus.py hand-landmark-lite --accuracy-only --option gptq=auto
                                                     # a compiler option (repeatable; as the
                                                     # CLI's --option NAME=VALUE)

Compile time and peak memory come from a fresh process per model (benchmarks/corpus_compile.py:
`npukit.compile` with the model's calibration file, sqnr=False, npukit's lazy imports
included; peak memory is the child's peak RSS); the targets are at most TARGET_S seconds and
TARGET_MB MB. The table gives the compile's CPU time (one core; on an idle machine its wall
time), which a shared machine's load disturbs less; --compile-only gives wall time too.
    python benchmarks/corpus.py --commands DIR       # no run: write each calibration set to
                                                     # DIR/<name>.npz, print the CLI commands
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from npukit.choices import METHODS  # noqa: E402
from npukit.codegen.context import CompileOptions  # noqa: E402
from npukit.codegen.options import parse_option  # noqa: E402
from npukit.errors import InputError  # noqa: E402
from npukit.models.corpus import CORPUS, CorpusResult, calibration, cli_command, evaluate  # noqa: E402

TARGET_S, TARGET_MB = 5.0, 1000.0
HERE = Path(__file__).resolve().parent


def measure_compile(name: str, arch: str, tmp: Path, options: dict | None = None) -> dict:
    """Compile `name` in a fresh process: {compile_s, cpu_s, peak_rss_mib} or {error}."""
    calib = calibration(name)
    argv = [sys.executable, str(HERE / "corpus_compile.py"), name, arch]
    if calib is not None:
        np.savez(tmp / f"{name}.npz", **calib)
    argv.append(str(tmp / f"{name}.npz") if calib is not None else "")
    if options:
        argv.append(json.dumps(options))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": f"child failed: {proc.stderr.strip()[-300:]}"}


def speed_cells(m: dict) -> str:
    if "compile_s" not in m:
        return " | |"
    return f" {m['cpu_s']:.1f} s | {m['peak_rss_mib'] * 1.048576:.0f} MB |"


def compile_row(name: str, m: dict) -> str:
    if "compile_s" not in m:
        return f"| {name} | {m.get('error', '')} | | | |"
    mb = m["peak_rss_mib"] * 1.048576
    within = m["compile_s"] <= TARGET_S and mb <= TARGET_MB
    return f"| {name} | {m['compile_s']:.1f} s | {m['cpu_s']:.1f} s | {mb:.0f} MB | {'yes' if within else '**no**'} |"


def host_summary(result: CorpusResult) -> str:
    if not result.host_ops:
        return "none"
    counts = Counter(result.host_ops)
    return "; ".join(f"{n}x {op} ({reason})" if n > 1 else f"{op} ({reason})" for (op, reason), n in counts.items())


def row(result: CorpusResult, measured: dict, mixed: bool = False) -> str:
    spec = CORPUS[result.name]
    how = f", {result.rounding}" if result.rounding and result.rounding != "nearest" else ""
    wide = (f" {result.widened} ({result.sqnr_db:.1f} dB{how}) |" if result.sqnr_db is not None else
            f" {result.widened} |") if mixed else ""
    if result.error:
        status = f"no: `{result.error}`"
        return f"| {result.name} | {spec.domain} | {status} | | | | |" + " |" * mixed + speed_cells(measured)
    regress = result.regressions(spec)
    return (f"| {result.name} | {spec.domain} | yes | {result.npu_layers} NPU; host: {host_summary(result)} | "
            f"{result.cosine:.4f} | {spec.metric.name} = {result.metric:.3f}{' **(' + '; '.join(regress) + ')**' if regress else ''} | "
            f"{result.cycles:,} |" + wide + speed_cells(measured))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: all)")
    parser.add_argument("--arch", default="npu-m")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--commands", type=Path, metavar="DIR", help="write calibration .npz files, print CLI commands")
    parser.add_argument("--compile-only", action="store_true", help="only compile time and peak memory, no accuracy")
    parser.add_argument("--precision", choices=("int8", "int16", "auto"), default="int8",
                        help="activation precision (float models; issue 13)")
    parser.add_argument("--min-sqnr", type=float, default=30.0, help="--precision auto: worst output SQNR (dB)")
    parser.add_argument("--calib-method", choices=METHODS, default="auto",
                        help="calibration (npukit compile's; other than auto: no compile time / memory)")
    parser.add_argument("--accuracy-only", action="store_true", help="no compile time and peak memory (no fresh process)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a compiler option, as npukit compile's --option (repeatable)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in CORPUS]
    if unknown:
        print(f"error: unknown corpus model(s) {', '.join(unknown)}; known: {', '.join(CORPUS)}", file=sys.stderr)
        return 2
    if args.commands:
        args.commands.mkdir(parents=True, exist_ok=True)
        for name in args.names or list(CORPUS):
            calib = calibration(name)
            path = args.commands / f"{name}.npz"
            if calib is not None:
                np.savez(path, **calib)
            print(cli_command(name, path if calib is not None else None, args.arch))
        return 0
    names = args.names or list(CORPUS)
    mixed = args.precision != "int8"
    options: dict[str, Any] = {"precision": args.precision, "min_sqnr": args.min_sqnr} if mixed else {}
    try:
        options.update(parse_option(CompileOptions, spec) for spec in args.option)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmpdir:
        if args.compile_only:
            print(f"| model | compile time | CPU time | peak memory | within {TARGET_S:g} s and {TARGET_MB:g} MB |")
            print("|---|---|---|---|---|")
            measured = {}
            for name in names:
                measured[name] = measure_compile(name, args.arch, Path(tmpdir), options)
                print(compile_row(name, measured[name]), flush=True)
            print(f"\n{time.perf_counter() - start:.0f} s in all")
            if args.json:
                args.json.write_text(json.dumps(measured, indent=1))
            return 0
        widened = " int16 activations (worst output SQNR) |" if mixed else ""
        print(f"| model | domain | compiles | layers (NPU / host with reason) | min output cosine | task metric "
              f"| cycles ({args.arch}) |{widened} compile CPU time | compile peak memory |")
        print("|---" * (9 + mixed) + "|")
        results = []
        for name in names:
            measured = {} if args.accuracy_only or args.calib_method != "auto" else measure_compile(name, args.arch, Path(tmpdir), options)
            result = dataclasses.replace(evaluate(name, args.arch, args.calib_method, options), compile_s=measured.get("compile_s"),
                                         peak_mib=measured.get("peak_rss_mib"))
            results.append(result)
            print(row(result, measured, mixed), flush=True)
    ok = sum(r.error is None for r in results)
    print(f"\n{ok}/{len(results)} compile and run; {time.perf_counter() - start:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
