"""Cross-layer equalisation (Data-Free Quantization, Nagel et al. 2019) of a float graph.

For a pair conv1 -> conv2 (regular or depthwise, multiplier 1) where conv1's output feeds
only conv2, output channel i of conv1 is divided by s_i and input channel i of conv2
multiplied by s_i, s_i = sqrt(r1_i / r2_i) with r1_i, r2_i the channel's largest |w| in each:
both then have range sqrt(r1_i r2_i), so per-channel int8 weights of conv2 stop losing its
small input channels to one large one. The float function is unchanged because the
activation between commutes with a positive scale: none, or ReLU (a clamp at 0 with no
upper bound). ReLU6 and any other upper clip do not (relu6(x / s) != relu6(x) / s): such
pairs are left alone. Sweeps repeat so that chains (conv -> depthwise -> conv) settle.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir.graph import Graph, Node, Op

SWEEPS = 8
S_BOUNDS = (1e-3, 1e3)       # a scale beyond these is a dead channel, not an outlier


def _conv(node: Node, g: Graph) -> bool:
    """A conv with constant float weights whose channel i in equals channel i out if depthwise."""
    if node.op is not Op.CONV2D or not g.tensors[node.inputs[1]].is_const:
        return False
    a, w = node.attrs, g.tensors[node.inputs[1]]
    if w.quant is not None or tuple(a.input_dilation) != (1, 1):
        return False
    return (w.shape[3] == g.tensors[node.inputs[0]].shape[-1]) if a.depthwise else a.groups == 1


def _commutes(node: Node) -> bool:
    act = node.attrs.act
    return act is None or (act.hi is None and act.lo in (None, 0.0))


def pairs(g: Graph) -> list[tuple[Node, Node]]:
    """(conv1, conv2) pairs that can be equalised."""
    out = []
    for n1 in g.nodes:
        if not _conv(n1, g) or not _commutes(n1) or n1.outputs[0] in g.outputs:
            continue
        users = g.consumers(n1.outputs[0])
        if len(users) == 1 and _conv(users[0], g) and users[0].inputs[0] == n1.outputs[0]:
            out.append((n1, users[0]))
    return out


def _out_ranges(w: np.ndarray, depthwise: bool) -> np.ndarray:
    return np.max(np.abs(w), axis=(0, 1, 2)) if depthwise else np.max(np.abs(w.reshape(w.shape[0], -1)), axis=1)


def _in_ranges(w: np.ndarray, depthwise: bool) -> np.ndarray:
    return np.max(np.abs(w), axis=(0, 1, 2))     # OHWI and [1, kh, kw, C] alike: the last axis


def equalize(g: Graph, sweeps: int = SWEEPS) -> Graph:
    """The graph with every equalisable pair's weights rescaled (see the module doc)."""
    found = pairs(g)
    if not found:
        return g
    data = {n: g.tensors[n].const_data.astype(np.float64) for pair in found for node in pair
            for n in node.inputs[1:] if g.tensors[n].is_const}
    shared = {name for name in data if sum(name in n.inputs for n in g.nodes) > 1}
    found = [(a, b) for a, b in found if not shared & set(a.inputs[1:] + b.inputs[1:])]
    for _ in range(sweeps):
        for n1, n2 in found:
            w1, w2 = data[n1.inputs[1]], data[n2.inputs[1]]
            r1, r2 = _out_ranges(w1, n1.attrs.depthwise), _in_ranges(w2, n2.attrs.depthwise)
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.where(r2 > 0, r2, 1.0)), 1.0)
            s = np.clip(s, *S_BOUNDS)
            if n1.attrs.depthwise:
                data[n1.inputs[1]] = w1 / s
            else:
                data[n1.inputs[1]] = w1 / s[:, None, None, None]
            if len(n1.inputs) > 2:
                data[n1.inputs[2]] = data[n1.inputs[2]] / s
            data[n2.inputs[1]] = w2 * s
    tensors = dict(g.tensors)
    for name, d in data.items():
        tensors[name] = replace(tensors[name], data=d.astype(np.float32))
    return g.with_nodes(g.nodes, tensors)
