"""The timeline as Chrome trace-event JSON (Perfetto UI, chrome://tracing) and the per-layer
table as CSV."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..arch import Arch
from ..errors import InputError
from ..isa.program import Program
from ..cost.timing import Timeline
from .events import LANE_NAMES, LANES, events, layer_rows, offchip_in_flight, sram_in_use
from .profile import Profile

PID = 1
CSV_COLUMNS = ("index", "name", "op", "target", "reason", "macs", "cycles", "network_pct", "util_pct",
               "mxu_cycles", "vpu_cycles", "dma_cycles", "roofline_cycles", "bound", "achieved_over_bound",
               "offchip_bytes", "energy_uj", "sqnr_db", "tiling", "nodes")


def chrome_trace(prog: Program, arch: Arch, t: Timeline, title: str) -> dict:
    """A track (tid) per engine, a complete event per instruction, counter tracks for the SRAM
    in use and the off-chip bytes in flight; times in microseconds at the arch's clock."""
    us = 1.0 / arch.clock_mhz
    out: list[dict] = [{"ph": "M", "pid": PID, "name": "process_name", "args": {"name": title}}]
    for order, engine in enumerate(LANES):
        tid = int(engine) + 1
        out.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_name", "args": {"name": LANE_NAMES[engine]}})
        out.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": order}})
    names = [layer.name for layer in prog.layers]
    evs = events(prog, arch, t)
    for e in evs:
        out.append({"ph": "X", "pid": PID, "tid": int(e.engine) + 1, "name": e.kind, "cat": LANE_NAMES[e.engine],
                    "ts": e.start * us, "dur": (e.end - e.start) * us,
                    "args": {"instruction": e.index, "layer": names[e.layer], "sram_bytes": e.sram_bytes,
                             "offchip_bytes": sum(e.offchip_bytes.values()), "macs": e.macs,
                             "cycles": [e.start, e.end]}})
        if e.offchip_bytes:
            out[-1]["args"]["regions"] = e.offchip_bytes
    times, series = sram_in_use(prog, t)
    for j, time in enumerate(times):
        out.append({"ph": "C", "pid": PID, "name": "SRAM in use (bytes)", "ts": time * us,
                    "args": {space: values[j] for space, values in series.items()}})
    for region, (times, values) in offchip_in_flight(evs).items():
        for time, value in zip(times, values):
            out.append({"ph": "C", "pid": PID, "name": f"off-chip bytes in flight: {region}", "ts": time * us,
                        "args": {region: value}})
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"arch": arch.name, "clock_mhz": arch.clock_mhz, "total_cycles": int(t.total_cycles)}}


def layers_csv(prog: Program, p: Profile, arch: Arch, noise: list[dict]) -> str:
    """One row per profile layer; `noise`: the noise report's rows (see events.noise_rows)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in layer_rows(prog, p, arch.macs_per_cycle, noise):
        w.writerow({k: "" if row[k] is None else row[k] for k in CSV_COLUMNS})
    return buf.getvalue()


def write_text(path: str | Path, text: str) -> None:
    """Write an output file; a path that cannot be written is a one-line error."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None


def write_trace(prog: Program, arch: Arch, t: Timeline, path: str | Path, title: str = "npukit") -> None:
    write_text(path, json.dumps(chrome_trace(prog, arch, t, title), separators=(",", ":")))
