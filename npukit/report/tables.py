"""Human-readable tables of a profile and of the quantisation-noise report (rich), fitted to
the terminal: numbers never wrap (columns the width cannot hold are left out, least useful
first), names are cut with an ellipsis."""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .units import cycles as cycles_text
from .units import energy_uj

if TYPE_CHECKING:
    from rich.table import Table

# rich is imported where a table is drawn: a compile that draws none does not load it

PIPED_WIDTH = 140       # output to a file or pipe: $COLUMNS, else this wide


def width() -> int:
    """$COLUMNS, else the terminal's width, else PIPED_WIDTH."""
    return max(40, shutil.get_terminal_size((PIPED_WIDTH, 24)).columns)


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool       # right-aligned, never wrapped
    keep: int           # columns are left out from the lowest `keep` up while the table is too wide
    min_width: int = 0  # a text column's narrowest (cut with an ellipsis below its content)


def _render(*items, cols: int | None = None) -> str:
    from rich.console import Console
    buf = io.StringIO()
    console = Console(file=buf, width=cols or width(), force_terminal=False, color_system=None)
    for item in items:
        console.print(item)
    return buf.getvalue()


def fitted_table(title: str, columns: list[Column], rows: list[list[str]], cols: int) -> Table:
    """A table of `rows` (cells as text) whose columns fit in `cols` characters."""
    need = [max([len(c.header), *(len(r[i]) for r in rows)]) if c.numeric else max(c.min_width, 3)
            for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    by_keep = sorted(shown, key=lambda i: columns[i].keep)
    # each column takes its width plus 3 (padding and rule); the frame takes 1 more
    while sum(need[i] + 3 for i in shown) + 1 > cols and len(shown) > 1:
        shown.remove(by_keep.pop(0))
    from rich.table import Table
    t = Table(title=title, title_justify="left", title_style="")
    for i in shown:
        c = columns[i]
        if c.numeric:
            t.add_column(c.header, justify="right", no_wrap=True, min_width=need[i])
        else:
            t.add_column(c.header, overflow="ellipsis", min_width=need[i])
    for r in rows:
        t.add_row(*(r[i] for i in shown))
    return t


PROFILE_COLUMNS = [Column("#", True, 1), Column("layer", False, 9, 8), Column("op", False, 8, 5),
                   Column("on", False, 3), Column("MACs", True, 6), Column("cycles", True, 10),
                   Column("bound", False, 7, 6), Column("mxu", True, 0), Column("dram B", True, 4),
                   Column("roofline", True, 2), Column("eff", True, 5)]


def profile_table(p, cols: int | None = None) -> str:
    cols = cols or width()
    rows = [[str(i), la.name[:40], la.op, la.target, f"{la.macs:,}", f"{la.cycles:,}", la.bound,
             f"{la.mxu_cycles:,}", f"{la.dram_bytes:,}", f"{la.roofline_cycles:,}", f"{la.efficiency:.2f}"]
            for i, la in enumerate(p.layers)]
    t = fitted_table(f"npukit profile on {p.arch} @ {p.clock_mhz:g} MHz", PROFILE_COLUMNS, rows, cols)
    parts = [f"total {cycles_text(p.total_cycles, p.clock_mhz)}", f"{p.macs:,} MACs",
             f"utilisation {p.utilisation:.1%}",
             f"roofline {p.roofline_cycles:,} cycles (achieved/bound {p.roofline_ratio:.2f})",
             f"off-chip {p.dram_bytes:,} B", f"energy {energy_uj(p.energy_uj)}",
             f"area {p.area_mm2['total']:.2f} mm2", f"SRAM peak {p.sram_peak_bytes:,} B",
             f"{p.instructions:,} instructions",
             f"weights {p.weight_bytes:,} B stored as {p.weight_bytes_compressed:,} B"]
    return (_render(t, cols=cols) + "\n".join(packed(parts, cols)) + "\n" + host_lines(p.host_ops) + "\n"
            + (_render(breakdown_table(p, cols), cols=cols) if p.breakdown else ""))


BREAKDOWN_COLUMNS = [Column("kind", False, 9, 10), Column("layers", True, 8), Column("on host", True, 5),
                     Column("cycles", True, 10), Column("share", True, 9), Column("bound (share of its cycles)", False, 7, 12),
                     Column("energy", True, 6), Column("ops", False, 1, 8)]


def breakdown_table(p, cols: int) -> Table:
    """Where the time goes: one row per kind of operator (report.breakdown)."""
    rows = []
    for r in p.breakdown:
        bounds = sorted(r["bounds"].items(), key=lambda kv: -kv[1])
        rows.append([r["kind"], str(r["layers"]), f"{r['host_layers']} ({r['host_cycles']:,} cy)" if r["host_layers"]
                     else "0", f"{r['cycles']:,}", f"{r['share']:.1%}",
                     ", ".join(f"{b} {c / r['cycles']:.0%}" for b, c in bounds if c) if r["cycles"] else "-",
                     energy_uj(r["energy_uj"]), ", ".join(r["ops"])])
    return fitted_table("where the time goes (by kind of operator)", BREAKDOWN_COLUMNS, rows, cols)


def packed(parts: list[str], cols: int, sep: str = " | ") -> list[str]:
    """`parts` joined by `sep` into lines of at most `cols` characters, never breaking a part."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(sep) + len(part) <= cols:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return lines


def summary_line(p) -> str:
    """Cycles, latency and energy of one inference: "905 cycles (1.13 us), 700 nJ"."""
    return f"{cycles_text(p.total_cycles, p.clock_mhz)}, {energy_uj(p.energy_uj)}"


def host_lines(host_ops: list[dict]) -> str:
    """The host fallbacks, one line each: node, operator, reason."""
    return f"host fallbacks: {len(host_ops)}" + "".join(
        f"\n  {h.get('node', h['name'])} ({h['op']}): {h['reason']}" for h in host_ops)


SQNR_COLUMNS = [Column("layer", False, 2, 8), Column("op", False, 1, 5), Column("SQNR dB", True, 3)]


def sqnr_table(rows, limit: int = 15, cols: int | None = None) -> str:
    """The worst `limit` layers' noise; one line when there is no report (a pre-quantised
    model keeps its own scales: there is no float reference to compare with)."""
    if not rows:
        return "no per-layer SQNR: the model arrives quantised (its scales are kept)"
    cols = cols or width()
    cells = [[r.layer[:50], r.op, f"{r.sqnr_db:.1f}"] for r in rows[:limit]]
    t = fitted_table("per-layer SQNR of int8 vs float on the calibration data (worst first)", SQNR_COLUMNS,
                     cells, cols)
    more = f"... {len(rows) - limit} more layers" if len(rows) > limit else ""
    return _render(t, more, cols=cols) if more else _render(t, cols=cols)


def _db(x) -> str:
    return "exact" if x is None else f"{x:.1f} dB"


def accuracy_lines(accuracy: dict | None, precision: dict | None = None, cols: int | None = None) -> str:
    """The outputs against float on held-out samples (compiler meta "accuracy"), and with
    precision auto / int16 what was widened and its cycles (meta "precision")."""
    lines = []
    if accuracy is not None:
        n = accuracy["heldout_samples"]
        if not n:
            lines.append(f"output accuracy: {accuracy['note']}")
        else:
            lines.append(f"output accuracy vs float on {n} held-out calibration sample{'s' * (n != 1)}:")
            for o in accuracy["outputs"]:
                agree = "" if o["argmax_agreement"] is None else f", argmax agreement {o['argmax_agreement']:.1%}"
                left = "" if o.get("in_worst_sqnr", True) else " (no signal: not in the worst output SQNR)"
                lines.append(f"  {o['output']}: cosine {o['cosine']:.5f}, SQNR {_db(o['sqnr_db'])}{agree}{left}")
    if precision is None:
        return "\n".join(lines)
    p = precision
    goal = f" (min_sqnr {p['min_sqnr']:g} dB {'met' if p['target_met'] else 'NOT met'})" if p["mode"] == "auto" else ""
    lines.append(f"precision {p['mode']}: worst output SQNR {_db(p['int8_sqnr_db'])} int8 -> {_db(p['sqnr_db'])} "
                 f"on {p['measured_on']}{goal}; {len(p['tensors'])} tensors int16"
                 + ("; int8 weights GPTQ-rounded" if p.get("rounding") == "gptq" else
                    "; int8 weights GPTQ-rounded, sequentially" if p.get("rounding") == "sequential" else ""))
    if p["layers"]:
        cells = [[r["layer"][:50], r["op"], r["int16"], f"{r['int8_cycles']:,}", f"{r['cycles']:,}",
                  f"{r['extra_cycles']:+,}"] for r in p["layers"]]
        cols = cols or width()
        t = fitted_table(f"layers with int16 activations: cycles {p['int8_cycles']:,} int8 -> {p['cycles']:,}",
                         WIDE_COLUMNS, cells, cols)
        lines.append(_render(t, cols=cols).rstrip("\n"))
    return "\n".join(lines)


WIDE_COLUMNS = [Column("layer", False, 5, 8), Column("op", False, 2, 5), Column("int16", False, 1, 6),
                Column("int8 cycles", True, 3), Column("cycles", True, 4), Column("extra", True, 6)]
