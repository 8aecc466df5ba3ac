"""The HTML report: one self-contained file (data, script and style inline; no network) with
the summary, the per-layer table, the roofline, the engine timeline, SRAM occupancy, the
quantisation noise and the arch parameters. The charts are drawn as SVG by report.js."""
from __future__ import annotations

import html
import json
import statistics
from importlib import resources
from pathlib import Path

from ..arch import Arch
from ..isa.program import Program
from ..cost.timing import Timeline
from .events import LANE_NAMES, LANES, aggregate, events, layer_rows, offchip_in_flight, sram_in_use
from .profile import Profile
from .trace import write_text
from .units import energy_uj, seconds

MAX_EVENTS = 12000      # timeline events drawn one by one; beyond, merged per lane, layer and time bucket
MAX_POINTS = 3000       # points of a step series; beyond, the peak of each time bucket


def _bytes(n: float) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n:.0f} B"


def _downsample(times: list[int], values: list[float], n: int = MAX_POINTS) -> tuple[list[int], list[float]]:
    """At most about `n` steps: each bucket of time keeps its peak value (peaks stay visible)."""
    if len(times) <= n:
        return times, values
    width = (times[-1] - times[0]) / n or 1
    out_t: list[int] = []
    out_v: list[float] = []
    for time, value in zip(times, values):
        bucket = times[0] + int((time - times[0]) / width) * width
        if out_t and out_t[-1] == int(bucket):
            out_v[-1] = max(out_v[-1], value)
        else:
            out_t.append(int(bucket))
            out_v.append(value)
    out_t.append(times[-1])
    out_v.append(values[-1])
    return out_t, out_v


def _summary(prog: Program, arch: Arch, p: Profile) -> list[list[str]]:
    host = sum(la.cycles for la in p.layers if la.target == "host")
    rows = [["cycles", f"{p.total_cycles:,}"], ["latency", seconds(p.total_cycles / (p.clock_mhz * 1e6))],
            ["energy", energy_uj(p.energy_uj)], ["area", f"{p.area_mm2['total']:.3g} mm2"],
            ["MACs", f"{p.macs:,}"], ["utilisation", f"{p.utilisation:.1%}"],
            ["achieved / roofline", f"{p.roofline_ratio:.2f}"]]
    rows += [[f"off-chip traffic: {region}", _bytes(n)] for region, n in p.region_bytes.items()]
    rows += [["SRAM peak", _bytes(p.sram_peak_bytes)],
             ["host share", f"{host / p.total_cycles:.1%} of cycles, {len(p.host_ops)} layers"
              if p.total_cycles else f"{len(p.host_ops)} layers"],
             ["layers", f"{len(p.layers)}"], ["instructions", f"{p.instructions:,}"],
             ["weights", f"{_bytes(p.weight_bytes)} stored as {_bytes(p.weight_bytes_compressed)}"]]
    return rows


def _accuracy(noise: list[dict], meta: dict) -> dict:
    finite = [r["sqnr_db"] for r in noise if r["sqnr_db"] is not None]
    out = {"calibration": str(meta.get("calibration", "")), "samples": meta.get("calibration_samples"),
           "random": bool(meta.get("random_calibration")), "layers": len(noise)}
    if finite:
        worst = min((r for r in noise if r["sqnr_db"] is not None), key=lambda r: r["sqnr_db"])
        out |= {"worst_db": worst["sqnr_db"], "median_db": statistics.median(finite), "worst_layer": worst["layer"]}
    return out


def _timeline(prog: Program, arch: Arch, t: Timeline, max_events: int) -> dict:
    evs = events(prog, arch, t)
    drawn = aggregate(evs, int(t.total_cycles), max_events)
    kinds = sorted({d["kind"] for d in drawn})
    columns = {k: [d[k] for d in drawn] for k in ("lane", "start", "end", "layer", "count", "first", "bytes", "macs")}
    columns["kind"] = [kinds.index(d["kind"]) for d in drawn]
    offchip = {region: _downsample(*series) for region, series in offchip_in_flight(evs).items()}
    times, sram = sram_in_use(prog, t)
    return {"lanes": [LANE_NAMES[e] for e in LANES], "kinds": kinds, "events": columns,
            "instructions": len(evs), "aggregated": len(drawn) < len(evs),
            "sram": {"t": times, "series": sram,
                     "capacity": {"ABUF": arch.abuf_bytes, "WBUF": arch.wbuf_bytes, "ACC": arch.acc_bytes}},
            "offchip": {region: {"t": tv[0], "v": tv[1]} for region, tv in offchip.items()}}


def report_data(prog: Program, arch: Arch, p: Profile, t: Timeline, noise: list[dict], title: str,
                max_events: int = MAX_EVENTS) -> dict:
    """Everything the page draws, as JSON data."""
    rows = layer_rows(prog, p, arch.macs_per_cycle, noise)
    span: dict[int, list[int]] = {}
    for ins, s, e in zip(prog.instructions, t.start, t.end):
        lo_hi = span.setdefault(ins.layer, [int(s), int(e)])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], int(s)), max(lo_hi[1], int(e))
    for row in rows:
        row["span"] = span.get(row["index"])
    derived = [["peak MACs / cycle", f"{arch.macs_per_cycle}"],
               ["peak", f"{2 * arch.macs_per_cycle * arch.clock_mhz / 1e3:.4g} GOPS"]]
    derived += [[f"{r.name} bytes / cycle", f"{arch.region_bytes_per_cycle(r.name):.4g}"] for r in arch.regions]
    return {"title": title, "arch": arch.name, "clock_mhz": arch.clock_mhz, "total_cycles": p.total_cycles,
            "summary": _summary(prog, arch, p), "layers": rows,
            "roofline": {"peak": arch.macs_per_cycle,
                         "bandwidth": {r.name: arch.region_bytes_per_cycle(r.name) for r in arch.regions}},
            "timeline": _timeline(prog, arch, t, max_events), "noise": noise,
            "accuracy": _accuracy(noise, prog.meta), "arch_toml": arch.to_toml(), "arch_derived": derived}


def render(data: dict) -> str:
    asset = resources.files(__package__)
    script = asset.joinpath("report.js").read_text(encoding="utf-8")
    style = asset.joinpath("report.css").read_text(encoding="utf-8")
    # "</" inside the inline JSON would close its script element
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    title = html.escape(data["title"])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>\n{style}</style></head>\n<body>\n"
            f'<header><h1>{title}</h1><p class="sub">npukit report on {html.escape(data["arch"])} '
            f'@ {data["clock_mhz"]:g} MHz</p></header>\n<main id="app"><noscript>This report draws its '
            f"tables and charts with JavaScript.</noscript></main>\n"
            f'<script id="report-data" type="application/json">{blob}</script>\n'
            f"<script>\n{script}</script>\n</body></html>\n")


def write_report(prog: Program, arch: Arch, p: Profile, t: Timeline, noise: list[dict], path: str | Path,
                 title: str = "npukit report") -> None:
    write_text(path, render(report_data(prog, arch, p, t, noise, title)))
