"""Measuring a quantised graph against its float model: the integer reference's outputs as real
numbers and the per-layer noise report. The compiler driver uses these; so do the tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .ir.graph import Graph, Tensor
from .progress import counted


@dataclass(frozen=True)
class LayerSqnr:
    layer: str
    op: str
    sqnr_db: float

    def to_json(self) -> dict:
        """As JSON data: an infinite SQNR (a layer computed exactly, e.g. in float on the host) is
        null; so is minus infinity (noise on a layer whose float output is all zero), marked
        "zero_signal"."""
        d = {"layer": self.layer, "op": self.op, "sqnr_db": self.sqnr_db if np.isfinite(self.sqnr_db) else None}
        return {**d, "zero_signal": True} if self.sqnr_db == float("-inf") else d

    @staticmethod
    def from_json(d: dict) -> "LayerSqnr":
        """The inverse of `to_json` (as a `.npub`'s meta stores the report)."""
        db = d["sqnr_db"]
        return LayerSqnr(str(d["layer"]), str(d["op"]), float("-inf") if d.get("zero_signal") else
                         float("inf") if db is None else float(db))


def run_dequantised(qg: Graph, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The integer reference's outputs on a float feed, as real numbers."""
    from .sim.reference import run_reference
    out = run_reference(qg, quantize_inputs(qg, feed))
    return {n: real_values(qg.tensors[n], x) for n, x in out.items()}


def real_values(t: Tensor, x: np.ndarray) -> np.ndarray:
    """An integer tensor's values as float64 real numbers (unquantised tensors as they are)."""
    q = t.quant
    return x.astype(np.float64) if q is None else (x.astype(np.float64) - q.zp) * q.s


def quantize_inputs(qg: Graph, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: _quantize_input(qg.tensors[n], feed[n]) for n in qg.inputs}


def _quantize_input(t: Tensor, x: np.ndarray) -> np.ndarray:
    from .kernels import kernels_vpu as kv
    if t.quant is None:
        return np.asarray(x).astype(t.dtype.np)
    return kv.quantize(np.asarray(x, np.float32), t.quant.s, t.quant.zp, t.dtype.np)


def sqnr_report(g: Graph, qg: Graph, feeds: Sequence[dict], values: list[dict] | None = None) -> list[LayerSqnr]:
    """Signal-to-quantisation-noise ratio of every layer's int8 output against float, worst
    first. `values`: the float graph `g`'s values on `feeds`, if kept (else each sample's are
    compared as the float run makes them, so that no sample's float values are all held)."""
    from .kernels.float_exec import run_float
    from .sim.reference import run_reference
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    layer = {node.outputs[0]: node for node in qg.nodes}
    for i, feed in enumerate(counted("noise report", list(feeds))):
        ivals = run_reference(qg, quantize_inputs(qg, feed), keep_all=True)

        def compare(name: str, value: np.ndarray) -> None:
            node = layer.get(name)
            if node is None:
                return
            f = value.astype(np.float64)
            dq = real_values(qg.tensors[name], ivals[name])
            signal[node.name] = signal.get(node.name, 0.0) + float(np.sum(f * f))
            noise[node.name] = noise.get(node.name, 0.0) + float(np.sum((f - dq) ** 2))
        if values is not None:
            for name in layer:
                compare(name, values[i][name])
        else:
            run_float(g, feed, visit=compare)
    out = [LayerSqnr(n.name, n.op.value, _db(signal.get(n.name, 0.0), noise.get(n.name, 0.0))) for n in qg.nodes]
    return sorted(out, key=lambda s: s.sqnr_db)


def _db(signal: float, noise: float) -> float:
    if noise <= 0:
        return float("inf")
    if signal <= 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))
