"""onnxruntime's dynamic int8 models (`quantize_dynamic`) as the float models they quantise.

Dynamic quantisation picks activation scales per input at run time, which a compiled NPU
program cannot; its int8 weights are what it fixes. So the weights are dequantised and each
quantised operator becomes its standard float operator, which npukit then quantises with
calibrated static scales like any float model:
- com.microsoft DynamicQuantizeLSTM(X, W, R, B, seq_lens, h0, c0, P, W_scale, W_zp, R_scale,
  R_zp) -> LSTM(X, W', R', B, seq_lens, h0, c0, P): W [dirs, in, 4H] int8 with a scale and
  zero point per direction or per (direction, gate column), W' = (W - zp) * scale transposed
  to ONNX's [dirs, 4H, in] (R likewise); the gate order (iofc) is the same;
- DynamicQuantizeLinear(x) -> ConvInteger / MatMulInteger with a constant weight, [+ the
  int32 bias, itself quantised at run time: floor(b / (sx * sw))], Cast to float, times
  sx * sw -> Conv(x, W', b) / MatMul(x, W');
- com.microsoft DynamicQuantizeMatMul(A, B, b_scale, b_zp, bias) -> MatMul(A, B') [+ bias];
- DequantizeLinear(Gather(table, ids), scale, zp) with a constant integer table (a quantised
  embedding), through any Transpose / Reshape between them -> Gather(table', ids) and the
  same reshapes, in a model with no QuantizeLinear (no static QDQ).
Nodes left with no used output (the quantisers, the bias's scale arithmetic) are dropped.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_fuse import GraphView, with_nodes

_QUANTISED = ("DynamicQuantizeLSTM", "DynamicQuantizeMatMul", "ConvInteger", "MatMulInteger")
_LSTM_ATTRS = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
               "input_forget")


def _numeric(*arrays: np.ndarray | None) -> bool:
    return all(a is not None and a.dtype.kind in "iuf" and a.size > 0 for a in arrays)


def _dequant(w: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray | None:
    """(w - zp) * scale with a per-tensor or per-`axis` scale; None when the shapes do not fit."""
    if w.ndim < 2 or scale.size not in (1, w.shape[axis]) or zp.size not in (1, scale.size) \
            or zp.dtype.kind not in "iu" or scale.dtype.kind != "f":
        return None
    shape = [1] * w.ndim
    shape[axis] = -1
    s, z = scale.astype(np.float64).reshape(shape), zp.astype(np.int64).reshape(shape)
    return ((w.astype(np.int64) - z) * s).astype(np.float32)


def _lstm(v: GraphView, n: onnx.NodeProto) -> tuple[onnx.NodeProto, list[onnx.TensorProto]] | None:
    ins = list(n.input) + [""] * (12 - len(n.input))
    if not ins[0] or any(ins[k] not in v.consts for k in (1, 2, 8, 9, 10, 11)):
        return None
    weights = []
    for k, sk in ((1, 8), (2, 10)):        # [dirs, rows, 4H] with scales [dirs] or [dirs, 4H]
        w, s, z = v.consts[ins[k]], v.consts[ins[sk]], v.consts[ins[sk + 1]]
        if not _numeric(w, s, z) or w.ndim != 3 or w.dtype.kind not in "iu" or z.dtype.kind not in "iu" \
                or s.dtype.kind != "f" or s.shape[:1] != w.shape[:1] or z.shape != s.shape:
            return None
        cols = s.reshape(w.shape[0], -1, 1).transpose(0, 2, 1)       # [dirs, 1, 1 | 4H]
        zps = z.reshape(w.shape[0], -1, 1).transpose(0, 2, 1)
        if cols.shape[2] not in (1, w.shape[2]):
            return None
        real = (w.astype(np.int64) - zps.astype(np.int64)) * cols.astype(np.float64)
        weights.append(np.ascontiguousarray(real.astype(np.float32).transpose(0, 2, 1)))
    name = n.name or n.output[0]
    inits = [numpy_helper.from_array(weights[0], f"{name}/W"), numpy_helper.from_array(weights[1], f"{name}/R")]
    lstm = helper.make_node("LSTM", [ins[0], inits[0].name, inits[1].name] + ins[3:8], list(n.output),
                            name=name)
    while lstm.input and not lstm.input[-1]:
        lstm.input.pop()
    lstm.attribute.extend(a for a in n.attribute if a.name in _LSTM_ATTRS)
    return lstm, inits


def _walk_bias(v: GraphView, name: str) -> np.ndarray | None:
    """The float constant b of the run-time quantised bias Reshape(Cast(Floor(Div(b, s))))."""
    node = v.producer.get(name)
    while node is not None and node.op_type in ("Reshape", "Cast", "Floor", "Round"):
        node = v.producer.get(node.input[0])
    if node is None or node.op_type != "Div" or not _numeric(v.consts.get(node.input[0])):
        return None
    return v.consts[node.input[0]]


def _only_user(v: GraphView, name: str, op: str) -> onnx.NodeProto | None:
    users = [n for n in v.graph.node if name in n.input]
    return users[0] if len(users) == 1 and users[0].op_type == op and v.uses.get(name) == 1 else None


def _integer_op(v: GraphView, n: onnx.NodeProto) -> tuple[onnx.NodeProto, list[onnx.TensorProto]] | None:
    ins = list(n.input) + [""] * (4 - len(n.input))
    dql = v.node(ins[0], "DynamicQuantizeLinear")
    if dql is None or ins[2] != dql.output[2] or ins[1] not in v.consts:
        return None
    w = v.consts[ins[1]]
    wzp = v.consts.get(ins[3]) if ins[3] else np.zeros(1, w.dtype)
    bias, out = None, n.output[0]
    add = _only_user(v, out, "Add")
    if add is not None:
        bias = _walk_bias(v, add.input[1] if add.input[0] == out else add.input[0])
        if bias is None:
            return None
        out = add.output[0]
    cast = _only_user(v, out, "Cast")
    mul = cast and _only_user(v, cast.output[0], "Mul")
    if not cast or not mul or [a.i for a in cast.attribute if a.name == "to"] != [onnx.TensorProto.FLOAT]:
        return None
    scales = v.node(mul.input[1] if mul.input[0] == cast.output[0] else mul.input[0], "Mul")
    if scales is None or dql.output[1] not in scales.input:
        return None
    ws = v.consts.get(scales.input[1] if scales.input[0] == dql.output[1] else scales.input[0])
    conv = n.op_type == "ConvInteger"
    if ws is None or wzp is None or not _numeric(w, ws, wzp) or w.dtype.kind not in "iu" \
            or (not conv and (w.ndim != 2 or bias is not None)):
        return None
    real = _dequant(w, ws.ravel(), wzp.ravel(), 0 if conv else 1)
    if real is None or (bias is not None and bias.size != real.shape[0 if conv else 1]):
        return None
    name = n.name or n.output[0]
    inits = [numpy_helper.from_array(real, f"{name}/W")]
    operands = [dql.input[0], inits[0].name]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.astype(np.float32).ravel(), f"{name}/B"))
        operands.append(inits[1].name)
    node = helper.make_node("Conv" if conv else "MatMul", operands, [mul.output[0]], name=name)
    if conv:
        node.attribute.extend(n.attribute)
    return node, inits


def _matmul(v: GraphView, n: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]] | None:
    ins = list(n.input) + [""] * (5 - len(n.input))
    w, ws = v.consts.get(ins[1]), v.consts.get(ins[2])
    wzp = v.consts.get(ins[3]) if ins[3] else np.zeros(1, np.int8)
    if not ins[0] or w is None or ws is None or wzp is None or not _numeric(w, ws, wzp) or w.dtype.kind not in "iu" \
            or w.ndim != 2:
        return None
    real = _dequant(w, ws.ravel(), wzp.ravel(), 1)
    if real is None:
        return None
    name = n.name or n.output[0]
    init = numpy_helper.from_array(real, f"{name}/W")
    if not ins[4]:
        return [helper.make_node("MatMul", [ins[0], init.name], [n.output[0]], name=name)], [init]
    return [helper.make_node("MatMul", [ins[0], init.name], [f"{name}/product"], name=name),
            helper.make_node("Add", [f"{name}/product", ins[4]], [n.output[0]], name=f"{name}/bias")], [init]


_LAYOUT = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def _gather(v: GraphView, n: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]] | None:
    """For DequantizeLinear(layout ops(Gather(table, ids)), scale, zp) with a constant integer
    table and one scale: Gather(the dequantised table, ids), then the same layout ops."""
    ins = list(n.input) + [""] * (3 - len(n.input))
    chain, node = [], v.producer.get(ins[0])
    while node is not None and node.op_type in _LAYOUT:
        chain.append(node)
        node = v.producer.get(node.input[0])
    if node is None or node.op_type != "Gather" or node.input[0] not in v.consts or ins[1] not in v.consts:
        return None
    table, scale = v.consts[node.input[0]], v.consts[ins[1]]
    zp = v.consts.get(ins[2]) if ins[2] else np.zeros(1, table.dtype)
    if zp is None or not _numeric(table, scale, zp) or table.dtype.kind not in "iu" or scale.size != 1 \
            or zp.size != 1 or scale.dtype.kind != "f":
        return None
    real = ((table.astype(np.int64) - int(zp.ravel()[0])) * float(scale.ravel()[0])).astype(np.float32)
    name = n.name or n.output[0]
    init = numpy_helper.from_array(real, f"{name}/table")
    made = [helper.make_node("Gather", [init.name, node.input[1]], [f"{name}/gathered"], name=f"{name}/gather")]
    made[0].attribute.extend(node.attribute)
    for k, step in enumerate(reversed(chain)):
        copy = onnx.NodeProto()
        copy.CopyFrom(step)
        copy.name = f"{name}/{k}"
        copy.input[0] = made[-1].output[0]
        copy.output[0] = f"{name}/{k}"
        made.append(copy)
    made[-1].output[0] = n.output[0]
    return made, [init]


def _live(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes some graph output depends on, in order (subgraph reads count as uses)."""
    need = {o.name for o in graph.output}
    keep = []
    for n in reversed(graph.node):
        if any(o in need for o in n.output) or not n.output:
            keep.append(n)
            need.update(n.input)
            for a in n.attribute:
                for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    need.update(i for k in g.node for i in k.input)
    return keep[::-1]


def dequantise_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with its dynamically quantised operators as float ones (the model
    itself when it has none)."""
    g = model.graph
    static = any(n.op_type == "QuantizeLinear" for n in g.node)
    if not any(n.op_type in _QUANTISED or (n.op_type == "DequantizeLinear" and not static) for n in g.node):
        return model
    v = GraphView(g)
    new: dict[str, list[onnx.NodeProto]] = {}   # by the output of the node they take the place of
    inits: list[onnx.TensorProto] = []
    for n in g.node:
        microsoft = n.domain == "com.microsoft"
        m = _lstm(v, n) if microsoft and n.op_type == "DynamicQuantizeLSTM" else \
            _integer_op(v, n) if n.op_type in ("ConvInteger", "MatMulInteger") and not microsoft else \
            None
        if m is not None:       # the LSTM takes its own place; a Conv / MatMul the final Mul's
            new[m[0].output[0]] = [m[0]]
            inits += m[1]
        mm = _matmul(v, n) if microsoft and n.op_type == "DynamicQuantizeMatMul" else \
            _gather(v, n) if n.op_type == "DequantizeLinear" and not n.domain and not static else None
        if mm is not None:
            new[n.output[0]] = mm[0]
            inits += mm[1]
    if not new:
        return model
    out = with_nodes(model, (k for n in g.node for k in (new.get(n.output[0], [n]) if n.output else [n])), inits)
    live = _live(out.graph)
    del out.graph.node[:]
    out.graph.node.extend(live)
    read = {i for n in live for i in n.input}
    read |= {o.name for o in g.output}
    dropped = {t.name for t in out.graph.initializer if t.name not in read}
    kept = [t for t in out.graph.initializer if t.name in read]
    inputs = [i for i in out.graph.input if i.name not in dropped]     # (older files list weights)
    del out.graph.initializer[:], out.graph.input[:]
    out.graph.initializer.extend(kept)
    out.graph.input.extend(inputs)
    return out
