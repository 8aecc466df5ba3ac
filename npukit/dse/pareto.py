"""Pareto fronts of stored points for any objectives, per model, exported as CSV or JSON."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Objective:
    name: str
    column: str
    maximise: bool = False


OBJECTIVES = {o.name: o for o in (
    Objective("latency", "latency_ms"), Objective("energy", "energy_uj"), Objective("area", "area_mm2"),
    Objective("utilisation", "utilisation", maximise=True), Objective("sram", "sram_peak_bytes"),
    Objective("dram", "dram_bytes"), Objective("cycles", "total_cycles"))}
_BY_COLUMN = {o.column: o for o in OBJECTIVES.values()}


def parse_objectives(text: str) -> list[Objective]:
    """"latency,energy,area" (names or stored column names) -> objectives."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--objectives: give at least one objective")
    out = []
    for n in names:
        obj = OBJECTIVES.get(n) or _BY_COLUMN.get(n)
        if obj is None:
            raise InputError(f"unknown objective {n!r} (known: {', '.join(OBJECTIVES)})")
        if obj in out:
            raise InputError(f"objective {n!r} given twice")
        out.append(obj)
    return out


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows of `values` (n x k, every column minimised): no other row is <= in
    every column and < in one. Equal rows are all kept."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(values.T[::-1])        # by first column, then the next: dominators come first
    front: list[int] = []
    for i in order:
        v = values[i]
        if front:
            f = values[front]
            if np.any(np.all(f <= v, axis=1) & np.any(f < v, axis=1)):
                keep[i] = False
                continue
        front.append(i)
    return keep


def pareto_front(rows: list[dict], objectives: list[Objective]) -> list[dict]:
    """The non-dominated successful rows, front computed separately for each model (points of
    different models do not compete); sorted by model then objectives."""
    out = []
    ok = [r for r in rows if r["status"] == "ok"]
    for model in sorted({r["model"] for r in ok}):
        group = [r for r in ok if r["model"] == model]
        vals = np.array([[(-1 if o.maximise else 1) * float(r[o.column]) for o in objectives] for r in group])
        out += [r for r, k in zip(group, pareto_mask(vals)) if k]
    return sorted(out, key=lambda r: (r["model"], *[r[o.column] for o in objectives], r["key"]))


def front_records(front: list[dict], objectives: list[Objective]) -> list[dict]:
    """Flat records for export: model, objectives, swept parameters, key."""
    params = sorted({k for r in front for k in json.loads(r["params_json"])})
    recs = []
    for r in front:
        p = json.loads(r["params_json"])
        recs.append({"model": r["model"], **{o.name: r[o.column] for o in objectives},
                     **{k: p.get(k) for k in params}, "key": r["key"]})
    return recs


def write_csv(records: list[dict], path: str | Path) -> None:
    cols = list(dict.fromkeys(k for r in records for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(records)


def write_json(records: list[dict], path: str | Path) -> None:
    Path(path).write_text(json.dumps(records, indent=1), encoding="utf-8")
