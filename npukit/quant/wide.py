"""Where int8 loses too much: per-layer quantisation noise, and the tensors to widen to int16.

`layer_noise` measures each layer alone: its float inputs are quantised at their own
scales, the integer kernel runs, and the result is compared with the layer's float output
(so an early bad layer does not make every later one look bad, as in the cumulative
report). `choose_int16` widens the residual sums feeding a LAYER_NORM whose noise is
below the threshold: transformer residual streams carry a few large channels that leave
the rest of an int8 scale with too few steps.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, Graph, Op
from . import kernels_vpu as kv
from .qexec import run_qnode


def layer_noise(qg: Graph, float_values: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Node name -> SQNR (dB) of that layer alone, over the given float activations."""
    sig: dict[str, float] = {}
    noise: dict[str, float] = {}
    for fv in float_values:
        for node in qg.nodes:
            ins = []
            for name in node.inputs:
                t = qg.tensors[name]
                if t.is_const:
                    ins.append(t.data)
                elif t.quant is None:
                    ins.append(np.asarray(fv[name]).astype(t.dtype.np))
                else:
                    ins.append(kv.quantize(fv[name], t.quant.s, t.quant.zp, t.dtype.np))
            out = qg.tensors[node.outputs[0]]
            got = run_qnode(node, ins, [qg.tensors[n].quant for n in node.inputs])
            f = np.asarray(fv[node.outputs[0]], np.float64)
            d = (got.astype(np.float64) - out.quant.zp) * out.quant.s if out.quant else got
            sig[node.name] = sig.get(node.name, 0.0) + float(np.sum(f * f))
            noise[node.name] = noise.get(node.name, 0.0) + float(np.sum((f - d) ** 2))
    return {n: float("inf") if noise[n] == 0 else 10 * np.log10(max(sig[n], 1e-30) / noise[n]) for n in sig}


def choose_int16(qg: Graph, noise_db: dict[str, float], threshold_db: float) -> frozenset[str]:
    """Residual sums (ADD outputs of int8 operands) feeding a LAYER_NORM noisier than
    `threshold_db`."""
    wide = set()
    for node in qg.nodes:
        if node.op is not Op.LAYER_NORM or noise_db.get(node.name, np.inf) >= threshold_db:
            continue
        src = qg.producer(node.inputs[0])
        if src is not None and src.op in (Op.ADD, Op.SUB) and \
                all(qg.tensors[t].dtype is DType.I8 for t in src.inputs if not qg.tensors[t].is_const):
            wide.add(node.inputs[0])
    return frozenset(wide)
