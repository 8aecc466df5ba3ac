"""The fuzz runner: each case in a forked child with a memory limit and a timeout.

    python -m npukit.testing.fuzz --cases 30000 --target all --seed 0
    python -m npukit.testing.fuzz --target npub --seed 0 --case 123 --save case.npub

A case is made from (target, seed, index) alone, so any failure is reproduced by its number.
The parent imports npukit, numpy, onnx, onnxruntime and LiteRT and compiles every seed before
forking, so a child starts warm. The child reports one JSON line through a pipe:
  ok        npukit accepted the input (or refused it with a one-line npukit error: `npukit`)
  multiline an npukit error whose message spans several lines
  escape    any other exception: class, first line, innermost npukit frame
  memory    MemoryError: an allocation beyond the budget (limits must refuse before allocating)
  hang      the case ran past its timeout (located by SIGALRM, else killed by the parent)
  crash     the child died without a report (a signal, or an abort in native code)
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

FAILURES = ("multiline", "escape", "memory", "hang", "crash")
MEMORY_BUDGET = 3 << 30          # 3 GiB of address space above the parent's, per child
TIMEOUT = 60.0                   # seconds per case: a real 416x416 detector compiles in about 15
_PKG = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Outcome:
    target: str
    seed: int
    case: int
    kind: str                     # ok | npukit | one of FAILURES | harness
    cls: str = ""
    message: str = ""
    where: str = ""               # innermost npukit frame, package-relative "file.py:line"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.target, self.kind, self.cls, self.where)

    def line(self) -> str:
        return (f"{self.target} {self.kind} {self.cls} at {self.where or '?'}: {self.message[:160]} "
                f"[python -m npukit.testing.fuzz --target {self.target} --seed {self.seed} --case {self.case} "
                f"--save case]")


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)

    def failures(self) -> list[Outcome]:
        """The first outcome of each distinct failure (target, kind, class, place)."""
        seen: dict[tuple, Outcome] = {}
        for o in self.outcomes:
            if o.kind in FAILURES or o.kind == "harness":
                seen.setdefault(o.key, o)
        return list(seen.values())

    def counts(self) -> dict[str, Counter]:
        out: dict[str, Counter] = {}
        for o in self.outcomes:
            out.setdefault(o.target, Counter())[o.kind] += 1
        return out

    def table(self) -> str:
        cols = ("ok", "npukit", *FAILURES, "harness")
        rows = [f"{'target':<11}{'cases':>7}" + "".join(f"{c:>10}" for c in cols)]
        for t, c in self.counts().items():
            rows.append(f"{t:<11}{sum(c.values()):>7}" + "".join(f"{c[k]:>10}" for k in cols))
        return "\n".join(rows)


def case_rng(target: str, seed: int, case: int) -> random.Random:
    return random.Random(f"{target}:{seed}:{case}")


class _Hang(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def _where(exc: BaseException) -> str:
    """Innermost frame in npukit (outside the fuzz harness), as 'path/file.py:line'."""
    best = ""
    tb = (exc.__cause__ or exc).__traceback__       # a harness finding names its cause's place
    for fr in traceback.extract_tb(tb):
        p = Path(fr.filename).resolve()
        if p.is_relative_to(_PKG) and not p.name.startswith("fuzz"):
            best = f"{p.relative_to(_PKG.parent)}:{fr.lineno}"
    return best


def _caused_by_memory(exc: BaseException) -> bool:
    seen = exc.__context__
    for _ in range(20):
        if seen is None:
            return False
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__context__
    return False


def _classify(exc: BaseException) -> dict:
    from npukit.errors import NpukitError
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    if isinstance(exc, NpukitError) and _caused_by_memory(exc):
        kind = "memory"          # refused, but only after the allocation failed
    elif isinstance(exc, NpukitError):
        kind = "npukit" if "\n" not in text and text.strip() else "multiline"
    elif isinstance(exc, MemoryError):
        kind = "memory"
    elif isinstance(exc, _Hang):
        kind, first = "hang", "timed out (SIGALRM)"
    else:
        kind = "escape"
    return {"kind": kind, "cls": type(exc).__name__, "message": first[:300], "where": _where(exc)}


def _child(target, seed: int, case: int, tmp: Path, fd: int, timeout: float, memory: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")
    faulthandler.disable()              # a crash is the parent's to report
    limit = _vm_size() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        made = target.make(case_rng(target.name, seed, case))
    except BaseException as exc:            # a harness bug: report it, but apart from npukit's
        report = {**_classify(exc), "kind": "harness"}
    else:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            target.execute(made, tmp)
            report = {"kind": "ok"}
        except BaseException as exc:
            report = _classify(exc)
        signal.setitimer(signal.ITIMER_REAL, 0)
    os.write(fd, json.dumps(report).encode())
    os._exit(0)


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def run(jobs_list: Iterable[tuple[str, int, int]], jobs: int = 2, timeout: float = TIMEOUT,
        memory: int = MEMORY_BUDGET, targets: dict | None = None,
        progress: Callable[[Outcome], None] | None = None) -> Summary:
    """Run the cases (target name, seed, index), `jobs` children at a time."""
    from . import fuzz_targets
    targets = targets or fuzz_targets.TARGETS
    work = list(jobs_list)
    for name in dict.fromkeys(t for t, _, _ in work):
        getattr(targets[name], "prepare", lambda: None)()
    if targets is fuzz_targets.TARGETS:
        fuzz_targets.warm()
    summary = Summary()
    active: dict[int, tuple[int, tuple[str, int, int], float, Path, bytearray]] = {}
    base = Path(tempfile.mkdtemp(prefix="npukit-fuzz-"))
    pending = iter(work)
    try:
        while True:
            while len(active) < jobs:
                nxt = next(pending, None)
                if nxt is None:
                    break
                name, seed, case = nxt
                tmp = base / f"{name}-{seed}-{case}"
                tmp.mkdir()
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    try:
                        _child(targets[name], seed, case, tmp, w, timeout, memory)
                    finally:
                        os._exit(70)
                os.close(w)
                active[r] = (pid, nxt, time.monotonic() + timeout + max(2.0, timeout / 4), tmp, bytearray())
            if not active:
                break
            wait = max(0.0, min(v[2] for v in active.values()) - time.monotonic())
            ready, _, _ = select.select(list(active), [], [], wait)
            for r in ready:
                chunk = os.read(r, 65536)
                if chunk:
                    active[r][4].extend(chunk)
                    continue
                _finish(summary, r, active.pop(r), killed=False, progress=progress)
            now = time.monotonic()
            for r in [r for r, v in active.items() if v[2] < now and r not in ready]:
                os.kill(active[r][0], signal.SIGKILL)
                _finish(summary, r, active.pop(r), killed=True, progress=progress)
    finally:
        for pid, *_ in active.values():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        shutil.rmtree(base, ignore_errors=True)
    return summary


def _finish(summary: Summary, r: int, entry, killed: bool, progress) -> None:
    pid, (name, seed, case), _, tmp, data = entry
    os.close(r)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(tmp, ignore_errors=True)
    if killed:
        o = Outcome(name, seed, case, "hang", "Timeout", "killed after the timeout")
    else:
        try:
            rep = json.loads(bytes(data))
            o = Outcome(name, seed, case, rep["kind"], rep.get("cls", ""), rep.get("message", ""), rep.get("where", ""))
        except ValueError:
            how = (f"signal {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
                   else f"exit status {os.WEXITSTATUS(status)}")
            o = Outcome(name, seed, case, "crash", how, f"child died without a report ({how})")
    summary.outcomes.append(o)
    if progress:
        progress(o)


def plan(targets: list[str], cases: int | dict[str, int], seed: int) -> list[tuple[str, int, int]]:
    """Cases interleaved across targets: `cases` in all (split evenly), or {target: count}."""
    per = cases if isinstance(cases, dict) else {t: -(-cases // len(targets)) for t in targets}
    rows = [(t, seed, i) for t in targets for i in range(per[t])]
    rows.sort(key=lambda x: (x[2], x[0]))
    return rows


def save_case(target: str, seed: int, case: int, path: str) -> Path:
    """Write the input of one case to `path` (+ the target's suffix if it has none)."""
    from .fuzz_targets import TARGETS
    t = TARGETS[target]
    if t.name in ("npub", "run"):
        from . import fuzz_targets
        fuzz_targets.npub_seeds() if t.name == "npub" else fuzz_targets.run_models()
    p = Path(path)
    p = p if p.suffix else p.with_suffix(t.suffix)
    p.write_bytes(t.encode(t.make(case_rng(target, seed, case))))
    return p


def main(argv: list[str] | None = None) -> int:
    from .fuzz_targets import TARGETS
    ap = argparse.ArgumentParser(prog="python -m npukit.testing.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="all", help=f"all or a comma list of {', '.join(TARGETS)}")
    ap.add_argument("--cases", type=int, default=1000, help="cases in all, split evenly across targets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--case", type=int, help="run (or with --save, write) only this case")
    ap.add_argument("--save", help="write the input of --case to this file")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=TIMEOUT)
    ap.add_argument("--json", help="write every failing outcome as JSON lines to this file")
    a = ap.parse_args(argv)
    names = [t for t in TARGETS if t != "tflite_big"] if a.target == "all" else a.target.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target {unknown[0]!r} (targets: {', '.join(TARGETS)})")
    if a.save is not None:
        if a.case is None or len(names) != 1:
            ap.error("--save needs --case and one --target")
        print(save_case(names[0], a.seed, a.case, a.save))
        return 0
    work = [(names[0], a.seed, a.case)] if a.case is not None else plan(names, a.cases, a.seed)
    start = time.monotonic()
    done: Counter[str] = Counter()

    def tick(o: Outcome) -> None:
        done[o.kind] += 1
        if sum(done.values()) % 200 == 0:
            print(f"{sum(done.values())} cases: " + ", ".join(f"{k} {n}" for k, n in sorted(done.items())),
                  file=sys.stderr, flush=True)

    s = run(work, jobs=a.jobs, timeout=a.timeout, progress=tick)
    took = time.monotonic() - start
    print(s.table())
    print(f"{len(s.outcomes)} cases in {took:.0f} s ({len(s.outcomes) / took:.1f} cases/s)")
    fails = s.failures()
    for o in sorted(fails, key=lambda o: o.key):
        n = sum(1 for x in s.outcomes if x.key == o.key)
        print(f"{n:>6}x {o.line()}")
    if a.json:
        Path(a.json).write_text("".join(json.dumps(o.__dict__) + "\n" for o in s.outcomes if o.kind != "ok"
                                        and o.kind != "npukit"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
