"""ONNX-level fusion of decomposed transformer layers, before conversion.

Exporters often spell GELU and layer norm out in elementary ops. Recognising them on the
ONNX graph (where constants are still visible) turns each into one standard node:
- GELU, erf form:  x * 0.5 * (1 + Erf(x / sqrt 2))  (any order of the two multiplications)
- GELU, tanh form: x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
- layer norm: d = x - ReduceMean(x); d / Sqrt(ReduceMean(d^2) + eps) [* gamma] [+ beta]
  over the last axis -> LayerNormalization.
- layer norm from moments (flax through jax2tf): onnx_fuse_moments.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

import onnx
from onnx import helper, numpy_helper


class Consts(Mapping[str, np.ndarray]):
    """Name -> constant value: a tensor (initializer, Constant node) is converted when first
    looked up, so the weights no pattern asks for are not copied out of the model."""

    def __init__(self) -> None:
        self.protos: dict[str, onnx.TensorProto] = {}
        self.arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            self.arrays[name] = numpy_helper.to_array(self.protos[name])
        return self.arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self.arrays or name in self.protos

    def __iter__(self) -> Iterator[str]:
        return iter(self.protos.keys() | self.arrays.keys())

    def __len__(self) -> int:
        return len(self.protos.keys() | self.arrays.keys())


class GraphView:
    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.consts = Consts()
        self.consts.protos.update((i.name, i) for i in graph.initializer)
        self.producer: dict[str, onnx.NodeProto] = {}
        self.uses: dict[str, int] = {o.name: 1 for o in graph.output}
        for n in graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts.arrays.pop(n.output[0], None)
                self.consts.protos[n.output[0]] = n.attribute[0].t
            elif n.op_type in ("Reshape", "Identity") and all(i in self.consts for i in n.input):
                self.consts.arrays[n.output[0]] = _folded(n, [self.consts[i] for i in n.input])
            for o in n.output:
                self.producer[o] = n
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1

    def node(self, name: str, op: str) -> onnx.NodeProto | None:
        n = self.producer.get(name)
        return n if n is not None and n.op_type == op else None

    def scalar(self, name: str) -> float | None:
        v = self.consts.get(name)
        return float(v.ravel()[0]) if v is not None and v.size == 1 else None

    def split(self, n: onnx.NodeProto, value: float, tol: float = 1e-3) -> str | None:
        """The non-constant input of binary `n` whose other input is the scalar `value`."""
        for i in (0, 1):
            s = self.scalar(n.input[1 - i])
            if s is not None and abs(s - value) <= tol * max(1.0, abs(value)):
                return n.input[i]
        return None

    def internal(self, nodes, out: str) -> bool:
        """Every value the pattern computes (but `out`) is used only inside the pattern."""
        inside: dict[str, int] = {}
        for k in nodes:
            for i in k.input:
                inside[i] = inside.get(i, 0) + 1
        return all(self.uses.get(o, 0) == inside.get(o, 0) for k in nodes for o in k.output if o != out)


def _folded(n: onnx.NodeProto, args: list[np.ndarray]) -> np.ndarray:
    """A Reshape or Identity of constants (an exporter's gamma reshaped to [C]), evaluated."""
    if n.op_type == "Identity":
        return args[0]
    x, shape = args[0], [int(d) for d in args[1]]
    allowzero = any(a.name == "allowzero" and a.i for a in n.attribute)
    return x.reshape([x.shape[k] if d == 0 and not allowzero else d for k, d in enumerate(shape)])


def _gelu_tail(v: GraphView, start: onnx.NodeProto, x: str):
    """Match 1 + start, then the multiplications by 0.5 and x; returns (nodes, output)."""
    adds = [n for n in v.graph.node if n.op_type == "Add" and start.output[0] in n.input]
    if len(adds) != 1 or v.split(adds[0], 1.0) != start.output[0]:
        return None
    add = adds[0]
    muls = [n for n in v.graph.node if n.op_type == "Mul" and add.output[0] in n.input]
    if len(muls) != 1:
        return None
    m1 = muls[0]
    other = m1.input[1] if m1.input[0] == add.output[0] else m1.input[0]
    half = v.node(other, "Mul")
    if other == x or (half is not None and v.split(half, 0.5) == x):   # (x | 0.5x) * (1 + .)
        nodes = [add, m1] + ([half] if other != x else [])
        if other == x:
            m2 = [n for n in v.graph.node if n.op_type == "Mul" and m1.output[0] in n.input]
            if len(m2) != 1 or v.split(m2[0], 0.5) != m1.output[0]:
                return None
            nodes.append(m2[0])
            return nodes, m2[0].output[0]
        return nodes, m1.output[0]
    if v.split(m1, 0.5) == add.output[0]:                                  # 0.5 * (1 + .), then x
        m2 = [n for n in v.graph.node if n.op_type == "Mul" and m1.output[0] in n.input]
        if len(m2) != 1 or x not in m2[0].input:
            return None
        return [add, m1, m2[0]], m2[0].output[0]
    return None


def _match_gelu(v: GraphView, n: onnx.NodeProto):
    if n.op_type == "Erf":
        pre = v.producer.get(n.input[0])
        if pre is None:
            return None
        x = (v.split(pre, math.sqrt(2)) if pre.op_type == "Div" else
             v.split(pre, math.sqrt(0.5)) if pre.op_type == "Mul" else None)
        if x is None:
            return None
        tail = _gelu_tail(v, n, x)
        return None if tail is None else ([pre, n] + tail[0], x, tail[1], "none")
    if n.op_type == "Tanh":
        scale = v.node(n.input[0], "Mul")
        inner = scale and v.split(scale, math.sqrt(2 / math.pi))
        add = inner and v.node(inner, "Add")
        if not add:
            return None
        for i in (0, 1):
            x, cube_term = add.input[i], v.node(add.input[1 - i], "Mul")
            cube = cube_term and v.split(cube_term, 0.044715)
            if not cube:
                continue
            p = v.node(cube, "Pow") or v.node(cube, "Mul")
            if p is None:
                continue
            if p.op_type == "Pow" and (p.input[0] != x or v.scalar(p.input[1]) != 3.0):
                continue
            powers = [p]
            if p.op_type == "Mul":
                sq = v.node(p.input[0], "Mul") or v.node(p.input[1], "Mul")
                if sq is None or list(sq.input) != [x, x] or x not in p.input:
                    continue
                powers = [p, sq]
            tail = _gelu_tail(v, n, x)
            if tail is not None:
                found = [scale, add, cube_term] + powers
                return found + [n] + tail[0], x, tail[1], "tanh"
    return None


def _last_axis_mean(v: GraphView, n: onnx.NodeProto | None, rank_hint: int | None = None) -> bool:
    if n is None:
        return False
    ints = [a.ints for a in n.attribute if a.name == "axes"]
    axes = list(ints[0]) if ints else (list(v.consts[n.input[1]].ravel()) if len(n.input) > 1
                                       and n.input[1] in v.consts else None)
    keep = [a.i for a in n.attribute if a.name == "keepdims"]
    return axes is not None and len(axes) == 1 and axes[0] == -1 and (not keep or keep[0] == 1)


def _match_layer_norm(v: GraphView, div: onnx.NodeProto):
    if div.op_type != "Div":
        return None
    sqrt = v.node(div.input[1], "Sqrt")
    sub = v.node(div.input[0], "Sub")
    if sqrt is None or sub is None:
        return None
    mean = v.node(sub.input[1], "ReduceMean")
    if mean is None or not _last_axis_mean(v, mean) or mean.input[0] != sub.input[0]:
        return None
    x = sub.input[0]
    add_eps = v.node(sqrt.input[0], "Add")
    if add_eps is None:
        return None
    var = add_eps and (v.node(add_eps.input[0], "ReduceMean") or v.node(add_eps.input[1], "ReduceMean"))
    if not var or not _last_axis_mean(v, var):
        return None
    eps = v.scalar(add_eps.input[1] if add_eps.input[0] == var.output[0] else add_eps.input[0])
    sq = v.node(var.input[0], "Pow") or v.node(var.input[0], "Mul")
    if eps is None or sq is None or sq.input[0] != sub.output[0]:
        return None
    if (sq.op_type == "Pow" and v.scalar(sq.input[1]) != 2.0) or (sq.op_type == "Mul" and sq.input[1] != sub.output[0]):
        return None
    nodes, out, gamma, beta = [mean, sub, sq, var, add_eps, sqrt, div], div.output[0], None, None
    gamma, out = absorb_const_user(v, out, "Mul", nodes)
    beta, out = absorb_const_user(v, out, "Add", nodes)
    return nodes, x, out, (float(eps), gamma, beta)


def absorb_const_user(v, out: str, op_type: str, nodes: list):
    """(constant, new output) when `out`'s only user is `op_type` with a constant operand
    (appended to `nodes`); else (None, out)."""
    users = [n for n in v.graph.node if out in n.input]
    if len(users) == 1 and users[0].op_type == op_type:
        other = users[0].input[1] if users[0].input[0] == out else users[0].input[0]
        if other in v.consts:
            nodes.append(users[0])
            return v.consts[other], users[0].output[0]
    return None, out


def fuse_onnx_patterns(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with decomposed GELU / layer norm replaced by single nodes."""
    g = model.graph
    v = GraphView(g)
    from .onnx_fuse_moments import fused_nodes, match_moment_layer_norm
    replaced: dict[int, list[onnx.NodeProto]] = {}
    drop: set[str] = set()
    inits = []
    for n in g.node:
        m = _match_gelu(v, n)
        kind = "gelu"
        if m is None:
            m, kind = _match_layer_norm(v, n), "ln"
        if m is None:
            m, kind = match_moment_layer_norm(v, n), "ln_moments"
        if m is None:
            continue
        nodes, x, out, extra = m
        ids = {k.output[0] for k in nodes}
        if ids & drop or not v.internal(nodes, out):
            continue
        last = max(range(len(g.node)), key=lambda i: i if g.node[i].output[0] in ids else -1)
        name = f"{g.node[last].name or out}_fused"
        if kind == "ln_moments":
            made, more = fused_nodes(x, out, name, extra)
            drop |= ids
            replaced[last] = made
            inits += more
            continue
        if kind == "gelu":
            fused = helper.make_node("Gelu", [x], [out], name=name, approximate=extra)
        else:
            eps, gamma, beta = extra
            width = gamma.shape[-1] if gamma is not None else (beta.shape[-1] if beta is not None else None)
            if width is None:
                continue        # the channel count is only known from gamma or beta
            gamma = np.ones(width, np.float32) if gamma is None else gamma.astype(np.float32).ravel()
            beta = np.zeros(width, np.float32) if beta is None else beta.astype(np.float32).ravel()
            inits += [numpy_helper.from_array(gamma, name + "/gamma"), numpy_helper.from_array(beta, name + "/beta")]
            fused = helper.make_node("LayerNormalization", [x, name + "/gamma", name + "/beta"], [out],
                                     name=name, axis=-1, epsilon=eps)
        drop |= ids
        replaced[last] = [fused]
    if not replaced:
        return model
    return with_nodes(model, (k for i, n in enumerate(g.node)
                              for k in replaced.get(i, [] if n.output[0] in drop else [n])), inits)


def with_nodes(model: onnx.ModelProto, nodes: Iterable[onnx.NodeProto],
               inits: Iterable[onnx.TensorProto] = ()) -> onnx.ModelProto:
    """A copy of `model` whose graph has `nodes`, in order, and `inits` added to its initialisers."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    return out
