"""The verdict of benchmarks/ptq_vs_peers.py: npukit's default int8 against the better peer,
with 0.01 of slack on a fraction metric only (hand-worked cases)."""
from __future__ import annotations

from benchmarks.ptq_vs_peers import Cell, verdict
from npukit.models.corpus import CORPUS


def test_verdict_against_the_better_peer() -> None:
    spec = CORPUS["ppocr-cls-v2"]        # class agreement: a fraction, higher is better

    def cells(ours: float | None, *peers: float | None) -> dict[str, Cell]:
        names = ("ort MinMax", "ort Percentile", "nncf")
        return {"npukit int8": Cell(ours), **{n: Cell(m) for n, m in zip(names, peers)}}
    assert verdict(spec, cells(0.995, 0.5, 1.0)) == "yes"          # within 0.01 of the better peer
    assert verdict(spec, cells(0.98, 1.0, 0.5)).startswith("**no**")
    assert verdict(spec, cells(0.9, None, 0.5, 0.8)) == "yes"
    assert verdict(spec, cells(0.9, None, None)) == "n/a"           # no peer ran


def test_verdict_on_a_lower_is_better_metric_has_no_slack() -> None:
    spec = CORPUS["iris-landmark"]       # landmark error in pixels
    assert verdict(spec, {"npukit int8": Cell(0.5), "nncf": Cell(0.5)}) == "yes"
    assert verdict(spec, {"npukit int8": Cell(0.505), "nncf": Cell(0.5)}).startswith("**no**")
