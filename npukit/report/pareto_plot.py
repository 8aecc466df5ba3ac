"""Interactive Pareto plot (self-contained plotly HTML): every successful point faint, the
front bold, one colour per model; hovering a point shows its swept parameters.

2 objectives: a scatter with the front joined; 3: a 3-D scatter; more: a scatter matrix.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def write_pareto_plot(rows: list[dict], front: list[dict], objectives: list, path: str | Path) -> None:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise InputError("--plot needs plotly: pip install 'npukit[dse]'") from None
    ok = [r for r in rows if r["status"] == "ok"]
    fig = go.Figure()
    on_front = {r["key"] for r in front}
    for i, model in enumerate(sorted({r["model"] for r in ok})):
        colour = COLOURS[i % len(COLOURS)]
        pts = [r for r in ok if r["model"] == model]
        best = sorted((r for r in pts if r["key"] in on_front), key=lambda r: [r[o.column] for o in objectives])
        rest = [r for r in pts if r["key"] not in on_front]
        fig.add_trace(_trace(go, rest, objectives, f"{model} (dominated)", colour, 0.25, 5, lines=False))
        fig.add_trace(_trace(go, best, objectives, f"{model} front", colour, 1.0, 9, lines=True))
    labels = [_label(o) for o in objectives]
    title = f"Pareto front: {', '.join(labels)} ({len(front)} of {len(ok)} points)"
    if len(objectives) == 2:
        fig.update_layout(xaxis_title=labels[0], yaxis_title=labels[1])
    elif len(objectives) == 3:
        fig.update_layout(scene=dict(xaxis_title=labels[0], yaxis_title=labels[1], zaxis_title=labels[2]))
    fig.update_layout(title=title, template="plotly_white", legend_title="model")
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


def _trace(go, pts: list[dict], objectives: list, name: str, colour: str, opacity: float, size: int,
           lines: bool):
    cols = [[r[o.column] for r in pts] for o in objectives]
    text = [_hover(r) for r in pts]
    marker = dict(color=colour, opacity=opacity, size=size)
    if len(objectives) == 2:
        return go.Scatter(x=cols[0], y=cols[1], mode="lines+markers" if lines else "markers", name=name,
                          text=text, hoverinfo="text+x+y", marker=marker,
                          line=dict(shape="hv", color=colour))
    if len(objectives) == 3:
        return go.Scatter3d(x=cols[0], y=cols[1], z=cols[2], mode="markers", name=name, text=text,
                            hoverinfo="text+x+y+z", marker=dict(color=colour, opacity=opacity, size=size // 2))
    return go.Splom(dimensions=[dict(label=_label(o), values=c) for o, c in zip(objectives, cols)],
                    name=name, text=text, marker=marker, diagonal_visible=False)


def _label(objective) -> str:
    unit = {"uj": "µJ"}.get(u := objective.column.rsplit("_", 1)[-1], u) if "_" in objective.column else ""
    return f"{objective.name} ({unit}, {'max' if objective.maximise else 'min'})" if unit else \
        f"{objective.name} ({'max' if objective.maximise else 'min'})"


def _hover(row: dict) -> str:
    params = json.loads(row["params_json"])
    return "<br>".join([row["model"], *(f"{k}: {v}" for k, v in params.items()), f"key {row['key'][:12]}"])
