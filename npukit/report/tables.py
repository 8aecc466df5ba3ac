"""Human-readable tables of a profile and of the quantisation-noise report (rich)."""
from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table


def _render(*items) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=140, force_terminal=False, color_system=None)
    for item in items:
        console.print(item)
    return buf.getvalue()


def profile_table(p) -> str:
    t = Table(title=f"npukit profile on {p.arch} @ {p.clock_mhz:g} MHz", title_justify="left")
    for col in ("#", "layer", "op", "on", "MACs", "cycles", "bound", "mxu", "dram B", "roofline", "eff"):
        t.add_column(col, justify="right" if col not in ("layer", "op", "on", "bound") else "left")
    for i, la in enumerate(p.layers):
        t.add_row(str(i), la.name[:40], la.op, la.target, f"{la.macs:,}", f"{la.cycles:,}", la.bound,
                  f"{la.mxu_cycles:,}", f"{la.dram_bytes:,}", f"{la.roofline_cycles:,}", f"{la.efficiency:.2f}")
    summary = (f"total {p.total_cycles:,} cycles = {p.latency_ms:.3f} ms | {p.macs:,} MACs | "
               f"utilisation {p.utilisation:.1%} | roofline {p.roofline_cycles:,} cycles "
               f"(achieved/bound {p.roofline_ratio:.2f}) | off-chip {p.dram_bytes:,} B | "
               f"energy {p.energy_uj:.1f} uJ | area {p.area_mm2['total']:.2f} mm2 | "
               f"SRAM peak {p.sram_peak_bytes:,} B | {p.instructions:,} instructions | "
               f"weights {p.weight_bytes:,} B stored as {p.weight_bytes_compressed:,} B")
    return _render(t, summary, host_lines(p.host_ops))


def host_lines(host_ops: list[dict]) -> str:
    """The host fallbacks, one line each: node, operator, reason."""
    return f"host fallbacks: {len(host_ops)}" + "".join(
        f"\n  {h.get('node', h['name'])} ({h['op']}): {h['reason']}" for h in host_ops)


def sqnr_table(rows, limit: int = 15) -> str:
    t = Table(title="per-layer SQNR of int8 vs float on the calibration data (worst first)",
              title_justify="left")
    t.add_column("layer")
    t.add_column("op")
    t.add_column("SQNR dB", justify="right")
    for r in rows[:limit]:
        t.add_row(r.layer[:50], r.op, f"{r.sqnr_db:.1f}")
    more = f"... {len(rows) - limit} more layers" if len(rows) > limit else ""
    return _render(t, more) if more else _render(t)
