"""Graph passes: constant folding, layout clean-up, batch-norm / pad / transpose folding, DCE."""
from __future__ import annotations

import numpy as np

from ..ir.graph import ConvAttrs, DType, Graph, Node, Op, ReshapeAttrs, Tensor, TransposeAttrs
from ..kernels.float_exec import run_outputs
from .rewrite import (Index, add_const, apply_rules, bypass, const, merged_source, replace_nodes,
                      sole_consumer)


# ---- constant folding ------------------------------------------------------------------

def fold_constants(g: Graph) -> Graph:
    """Evaluate every node whose inputs are all constant (a host TFLite node: all its outputs)."""
    tensors = dict(g.tensors)
    nodes = []
    for node in g.nodes:
        if node.inputs and all(tensors[t].is_const for t in node.inputs) \
                and not any(t in g.outputs for t in node.outputs) and node.op is not Op.HOST_FLOAT:
            for out, value in zip(node.outputs, run_outputs(node, [tensors[t].const_data for t in node.inputs])):
                value = np.asarray(value, np.float32).reshape(tensors[out].shape)
                tensors[out] = Tensor(out, tensors[out].shape, DType.F32, value)
        else:
            nodes.append(node)
    return g.with_nodes(nodes, tensors)


def eliminate_dead_nodes(g: Graph) -> Graph:
    live = set(g.outputs)
    kept = []
    for node in reversed(g.nodes):
        if any(t in live for t in node.outputs):
            kept.append(node)
            live.update(node.inputs)
    return g.with_nodes(kept[::-1])


# ---- layout clean-up rules ---------------------------------------------------------------

def _identity_node(g: Graph, node: Node, idx: Index) -> Graph | None:
    if node.op is Op.RESHAPE and g.tensors[node.inputs[0]].shape == g.tensors[node.outputs[0]].shape:
        return bypass(g, node)
    if node.op is Op.TRANSPOSE and tuple(node.attrs.perm) == tuple(range(len(node.attrs.perm))):
        return bypass(g, node)
    return None


def _compose_transposes(g: Graph, node: Node, idx: Index) -> Graph | None:
    """TRANSPOSE(TRANSPOSE(x, p), q) -> TRANSPOSE(x, p[q]) (identity ones then vanish)."""
    if node.op is not Op.TRANSPOSE:
        return None
    prev = idx.producer.get(node.inputs[0])
    if prev is None or prev.op is not Op.TRANSPOSE:
        return None
    perm = tuple(prev.attrs.perm[q] for q in node.attrs.perm)
    new = node.with_(inputs=prev.inputs, attrs=TransposeAttrs(perm), source=merged_source(prev, node))
    return g.with_nodes([new if n is node else n for n in g.nodes])


def _transpose_of_unit_dims(g: Graph, node: Node, idx: Index) -> Graph | None:
    """A TRANSPOSE that keeps the order of all non-1 dims is a RESHAPE."""
    if node.op is not Op.TRANSPOSE:
        return None
    shape = g.tensors[node.inputs[0]].shape
    moved = [p for p in node.attrs.perm if shape[p] != 1]
    if moved != sorted(moved):
        return None
    new = node.with_(op=Op.RESHAPE, attrs=ReshapeAttrs(g.tensors[node.outputs[0]].shape))
    return g.with_nodes([new if n is node else n for n in g.nodes])


def _merge_reshapes(g: Graph, node: Node, idx: Index) -> Graph | None:
    """RESHAPE(RESHAPE(x)) -> RESHAPE(x)."""
    if node.op is not Op.RESHAPE:
        return None
    prev = idx.producer.get(node.inputs[0])
    if prev is None or prev.op is not Op.RESHAPE:
        return None
    new = node.with_(inputs=prev.inputs, source=merged_source(prev, node))
    return g.with_nodes([new if n is node else n for n in g.nodes])


def clean_layout(g: Graph) -> Graph:
    g = apply_rules(g, [_identity_node, _compose_transposes, _transpose_of_unit_dims, _merge_reshapes])
    return eliminate_dead_nodes(g)


# ---- folding into weighted layers --------------------------------------------------------

def _per_channel(c: np.ndarray | None, channels: int, out_rank: int) -> np.ndarray | None:
    """c as a [channels] vector when it broadcasts along the last axis only."""
    if c is None or c.ndim > out_rank:
        return None
    if c.ndim == 0:
        return np.full(channels, float(c), np.float32)
    if any(d != 1 for d in c.shape[:-1]) or c.shape[-1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float32)


def _fold_scale_shift(g: Graph, node: Node, idx: Index) -> Graph | None:
    """MUL / ADD / SUB by a per-channel constant right after a conv or fully-connected layer."""
    if node.op not in (Op.CONV2D, Op.FULLY_CONNECTED) or node.attrs.act is not None or len(node.inputs) < 3:
        return None
    nxt = sole_consumer(g, idx, node.outputs[0])
    if nxt is None or nxt.op not in (Op.MUL, Op.ADD, Op.SUB) or nxt.attrs.act is not None:
        return None
    if nxt.inputs[0] != node.outputs[0] or nxt.inputs[1] == node.outputs[0]:
        return None
    out_shape = g.tensors[node.outputs[0]].shape
    if g.tensors[nxt.outputs[0]].shape != out_shape:
        return None
    c = _per_channel(const(g, nxt.inputs[1]), out_shape[-1], len(out_shape))
    if c is None:
        return None
    tensors = dict(g.tensors)
    w, bias = g.tensors[node.inputs[1]].const_data, g.tensors[node.inputs[2]].data   # (verified constant weights)
    weights = node.inputs[1]
    if nxt.op is Op.MUL:
        depthwise = node.op is Op.CONV2D and node.attrs.depthwise
        scale = c.reshape((1,) * (w.ndim - 1) + (-1,)) if depthwise else c.reshape((-1,) + (1,) * (w.ndim - 1))
        weights = add_const(tensors, w * scale, node.inputs[1] + "_folded")
        bias = bias * c
    else:
        bias = bias + c if nxt.op is Op.ADD else bias - c
    bias_name = add_const(tensors, bias, node.inputs[2] + "_folded")
    new = node.with_(inputs=(node.inputs[0], weights, bias_name), outputs=nxt.outputs,
                     source=merged_source(node, nxt))
    return replace_nodes(g, [node, nxt], new, tensors)


def fold_batch_norm(g: Graph) -> Graph:
    return eliminate_dead_nodes(apply_rules(g, [_fold_scale_shift]))


def _fold_pad_into_conv(g: Graph, node: Node, idx: Index) -> Graph | None:
    """A zero PAD of H and W only, read only by a (non-transposed) conv, becomes conv padding."""
    if node.op is not Op.PAD or node.attrs.mode != "constant" or node.attrs.value != 0.0 or len(node.attrs.pads) != 4:
        return None
    (n0, n1), _, _, (c0, c1) = node.attrs.pads
    conv = sole_consumer(g, idx, node.outputs[0])
    if (n0, n1, c0, c1) != (0, 0, 0, 0) or conv is None or conv.op is not Op.CONV2D:
        return None
    if conv.inputs[0] != node.outputs[0] or conv.attrs.input_dilation != (1, 1):
        return None
    (t, b), (l, r) = node.attrs.pads[1], node.attrs.pads[2]
    p = conv.attrs.pads
    attrs: ConvAttrs = conv.attrs
    new = conv.with_(inputs=(node.inputs[0],) + conv.inputs[1:],
                     attrs=ConvAttrs(attrs.stride, attrs.dilation, (p[0] + t, p[1] + l, p[2] + b, p[3] + r),
                                     attrs.groups, attrs.input_dilation, attrs.depthwise, attrs.act),
                     source=merged_source(node, conv))
    return replace_nodes(g, [node, conv], new)


def fold_pads(g: Graph) -> Graph:
    return apply_rules(g, [_fold_pad_into_conv])


def _fold_transpose_into_fc(g: Graph, node: Node, idx: Index) -> Graph | None:
    """TRANSPOSE -> RESHAPE to [N, K] -> FULLY_CONNECTED: permute the weight columns instead."""
    if node.op is not Op.TRANSPOSE or node.attrs.perm[0] != 0:
        return None
    rs = sole_consumer(g, idx, node.outputs[0])
    if rs is None or rs.op is not Op.RESHAPE:
        return None
    in_shape = g.tensors[node.inputs[0]].shape
    flat = g.tensors[rs.outputs[0]].shape
    if len(flat) != 2 or flat[0] != in_shape[0]:
        return None
    fc = sole_consumer(g, idx, rs.outputs[0])
    if fc is None or fc.op is not Op.FULLY_CONNECTED or fc.inputs[0] != rs.outputs[0]:
        return None
    t_shape = g.tensors[node.outputs[0]].shape
    # position in the transposed flattening of every element, laid out in the input's order
    order = np.arange(int(np.prod(t_shape[1:]))).reshape(t_shape[1:])
    inverse = np.argsort(node.attrs.perm[1:])
    cols = order.transpose(tuple(inverse)).reshape(-1)
    tensors = dict(g.tensors)
    w = g.tensors[fc.inputs[1]].const_data
    wname = add_const(tensors, w[:, cols], fc.inputs[1] + "_permuted")
    new_rs = rs.with_(inputs=node.inputs, source=merged_source(node, rs))
    new_fc = fc.with_(inputs=(fc.inputs[0], wname) + fc.inputs[2:])
    nodes = [new_rs if n is rs else new_fc if n is fc else n for n in g.nodes if n is not node]
    return g.with_nodes(nodes, tensors)


def fold_transpose_into_fc(g: Graph) -> Graph:
    return apply_rules(g, [_fold_transpose_into_fc])
