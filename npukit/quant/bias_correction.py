"""Empirical bias correction (Data-Free Quantization, Nagel et al. 2019, measured version).

Rounding a conv's or fully connected layer's weights to int8 shifts the mean of each output
channel by E[W_q x] - E[W x] = E[(W_q - W) x]. Measured on the calibration samples' float
inputs (pre-activation, padding included), the shift is subtracted from the layer's bias
(one is added where the layer has none), so int8 keeps each channel's mean output.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir.graph import DType, Graph, Node, Op, Tensor
from ..kernels.float_exec import run_node
from .conv_weights import weights_per_channel


def _weight_error(g: Graph, node: Node, reference: Graph) -> np.ndarray:
    w = g.tensors[node.inputs[1]].const_data
    axis = 3 if (node.op is Op.CONV2D and node.attrs.depthwise) else 0
    q, scales = weights_per_channel(w, axis)
    shape = [1] * w.ndim
    shape[axis] = -1
    return (q.astype(np.float32) * scales.reshape(shape) - reference.tensors[node.inputs[1]].const_data).astype(np.float32)


def _correctable(g: Graph, node: Node) -> bool:
    if node.op not in (Op.CONV2D, Op.FULLY_CONNECTED):
        return False
    w = g.tensors[node.inputs[1]]
    return w.is_const and w.quant is None and w.dtype is DType.F32


def output_shift(g: Graph, node: Node, inputs: list[np.ndarray], reference: Graph | None = None) -> np.ndarray:
    """E[(W_q - W) x] per output channel over the given float inputs of `node` (W: the
    weights of `reference`, by default `g`'s own; W_q: g's weights rounded to int8)."""
    bare = node.with_(inputs=node.inputs[:2], attrs=replace(node.attrs, act=None))
    err = _weight_error(g, node, g if reference is None else reference)
    total: np.ndarray | None = None
    count = 0
    for x in inputs:
        y = np.asarray(run_node(bare, [x, err]), np.float64)
        y = y.reshape(-1, y.shape[-1])
        total = y.sum(axis=0) if total is None else total + y.sum(axis=0)
        count += y.shape[0]
    assert total is not None, "no inputs"
    return total / max(count, 1)


def correct_biases(g: Graph, values: list[dict[str, np.ndarray]], reference: Graph | None = None) -> Graph:
    """`g` with every conv / fully connected bias corrected for its weights' int8 rounding,
    measured on `values` (float tensors of calibration samples, as calibrate.observe keeps).
    `reference`: the graph with the float weights to measure against where `g`'s weights
    were already rounded (quant.gptq), by default `g`."""
    tensors, nodes = dict(g.tensors), []
    for node in g.nodes:
        x = node.inputs[0]
        seen = [v[x] for v in values if x in v]
        if not _correctable(g, node) or not seen or g.tensors[x].dtype is not DType.F32:
            nodes.append(node)
            continue
        shift = output_shift(g, node, seen, reference)
        if len(node.inputs) > 2 and g.tensors[node.inputs[2]].is_const:
            old = g.tensors[node.inputs[2]].const_data.astype(np.float64)
            others = [n for n in g.nodes if node.inputs[2] in n.inputs and n is not node]
        elif len(node.inputs) > 2:
            nodes.append(node)
            continue
        else:
            old, others = np.zeros_like(shift), []
        name = node.inputs[2] if len(node.inputs) > 2 and not others else _fresh(tensors, f"{node.name}.bias")
        bias = (old - shift).astype(np.float32)
        tensors[name] = Tensor(name, bias.shape, DType.F32, bias)
        nodes.append(node.with_(inputs=(node.inputs[0], node.inputs[1], name)))
    return g.with_nodes(nodes, tensors)


def _fresh(tensors: dict, base: str) -> str:
    name, i = base, 0
    while name in tensors:
        i += 1
        name = f"{base}{i}"
    return name
