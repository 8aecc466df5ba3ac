"""A design point = (arch, model, compiler options), its content key, and its evaluation.

Evaluation runs in a worker: lower the model's quantised graph for the point's arch and
options, time it, build the profile and, if asked, run the functional simulator on a few
seeded random inputs against the graph-level integer reference. Errors a user can cause
(ScheduleError, ArchError, ...) become a stored failure, never a crashed sweep; so does any
other exception a point raises (`run_point`), MemoryError included.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..version import build_id
from ..arch import Arch
from ..codegen.context import CompileOptions
from ..errors import NpukitError, first_line

METRICS = ("latency_ms", "energy_uj", "area_mm2", "utilisation", "sram_peak_bytes", "dram_bytes",
           "total_cycles", "macs")


@dataclass(frozen=True)
class Candidate:
    """What a strategy proposes: a model (by index in the space) and the swept values."""
    model: int
    values: tuple[tuple[str, Any], ...]   # (param name, value), in the space's param order

    def overrides(self, target: str) -> dict[str, Any]:
        prefix = target + ":"
        return {k[len(prefix):]: v for k, v in self.values if k.startswith(prefix)}


@dataclass(frozen=True)
class Task:
    """What a worker needs: everything is plain data except the graph, fetched by model_hash."""
    key: str
    model_hash: str
    arch_json: str
    options: tuple[tuple[str, Any], ...]
    check_inputs: int


@dataclass(frozen=True)
class Outcome:
    key: str
    status: str                     # "ok" | "error"
    error: str = ""
    metrics: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)    # breakdowns (energy, area, region bytes)
    check: str = ""
    eval_seconds: float = 0.0


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def point_key(arch_id: str, model_hash: str, calibration_hash: str, options: dict, check_inputs: int) -> str:
    """The content key: equal keys mean the same computation, which is never done twice."""
    blob = json.dumps({"arch": arch_id, "model": model_hash, "calibration": calibration_hash,
                       "options": options, "check_inputs": check_inputs, "npukit": build_id()},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def failure_reason(exc: BaseException) -> str:
    """One line: "<Class>: <first line of the message>"."""
    line = first_line(str(exc), 500)
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def run_point(fn, task: Task, qgraph) -> Outcome:
    """`fn(task, qgraph)`; whatever it raises is the point's stored failure, not the sweep's."""
    t0 = time.perf_counter()
    try:
        return fn(task, qgraph)
    except Exception as exc:   # MemoryError, ZeroDivisionError, ...: the point failed
        return Outcome(task.key, "error", failure_reason(exc), eval_seconds=time.perf_counter() - t0)


def evaluate(task: Task, qgraph) -> Outcome:
    """Lower + time (+ check) one point. Runs in a worker process."""
    from ..codegen.lower import lower_program
    from ..report.profile import build_profile
    from ..cost.timing import simulate
    from .check import check as functional_check, references
    t0 = time.perf_counter()
    try:
        arch = Arch.from_dict(json.loads(task.arch_json))
        options = CompileOptions(**dict(task.options))
        program = lower_program(qgraph, arch, options, {"npukit_version": __version__})
        profile = build_profile(program, arch, simulate(program, arch))
        check = functional_check(program, arch, task.model_hash,
                                 references(task.model_hash, qgraph, task.check_inputs)) if task.check_inputs else ""
    except NpukitError as exc:
        return Outcome(task.key, "error", failure_reason(exc),
                       eval_seconds=time.perf_counter() - t0)
    metrics = {m: getattr(profile, m) if m != "area_mm2" else profile.area_mm2["total"] for m in METRICS}
    detail = {"energy_breakdown_uj": profile.energy_breakdown_uj, "area_breakdown_mm2": profile.area_mm2,
              "region_bytes": profile.region_bytes, "host_ops": len(profile.host_ops),
              "instructions": profile.instructions}
    status = "ok" if not check.startswith("FAIL") else "error"
    return Outcome(task.key, status, check if status == "error" else "", metrics, detail, check,
                   time.perf_counter() - t0)
