"""The model corpus table: per model, compiled or the exact error, host operators with reasons,
agreement with the float model (min output cosine, task metric), cycles on the arch, compile
time. Prints markdown (the table of docs/models.md).

    python benchmarks/corpus.py                      # every model of npukit.models.corpus
    python benchmarks/corpus.py face-landmark iris-landmark --arch npu-m
    python benchmarks/corpus.py --json out.json      # also the results as JSON
    python benchmarks/corpus.py --commands DIR       # no run: write each calibration set to
                                                     # DIR/<name>.npz, print the CLI commands
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from npukit.models.corpus import CORPUS, CorpusResult, calibration, cli_command, evaluate  # noqa: E402


def host_summary(result: CorpusResult) -> str:
    if not result.host_ops:
        return "none"
    counts = Counter(result.host_ops)
    return "; ".join(f"{n}x {op} ({reason})" if n > 1 else f"{op} ({reason})" for (op, reason), n in counts.items())


def row(result: CorpusResult) -> str:
    spec = CORPUS[result.name]
    if result.error:
        status = f"no: `{result.error}`"
        return f"| {result.name} | {spec.domain} | {status} | | | | | |"
    regress = result.regressions(spec)
    return (f"| {result.name} | {spec.domain} | yes | {result.npu_layers} NPU; host: {host_summary(result)} | "
            f"{result.cosine:.4f} | {spec.metric.name} = {result.metric:.3f}{' **(' + '; '.join(regress) + ')**' if regress else ''} | "
            f"{result.cycles:,} | {result.compile_s:.1f} s |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: all)")
    parser.add_argument("--arch", default="npu-m")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--commands", type=Path, metavar="DIR", help="write calibration .npz files, print CLI commands")
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
    print(f"| model | domain | compiles | layers (NPU / host with reason) | min output cosine | task metric "
          f"| cycles ({args.arch}) | compile time |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    start = time.perf_counter()
    for name in args.names or list(CORPUS):
        result = evaluate(name, args.arch)
        results.append(result)
        print(row(result), flush=True)
    ok = sum(r.error is None for r in results)
    print(f"\n{ok}/{len(results)} compile and run; {time.perf_counter() - start:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
