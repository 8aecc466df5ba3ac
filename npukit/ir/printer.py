"""A readable text form of a Graph, one node per line."""
from __future__ import annotations

import dataclasses

from .graph import Graph, Node, NoAttrs, Tensor


def _tensor(t: Tensor) -> str:
    shape = "x".join(str(d) for d in t.shape) or "scalar"
    kind = "const " if t.is_const else ""
    q = ""
    if t.quant is not None:
        q = f" q(s={t.quant.scale[0]:.6g}{'..' if len(t.quant.scale) > 1 else ''}, zp={t.quant.zero_point[0]})"
    return f"{kind}{t.dtype.value}[{shape}]{q}"


def _attrs(node: Node) -> str:
    a = node.attrs
    if isinstance(a, NoAttrs) or a is None:
        return ""
    if not dataclasses.is_dataclass(a):
        return f" {a}"
    parts = []
    for f in dataclasses.fields(a):
        v = getattr(a, f.name)
        if v is None or v == f.default:
            continue
        parts.append(f"{f.name}={v}")
    return (" {" + ", ".join(parts) + "}") if parts else ""


def format_node(g: Graph, node: Node) -> str:
    ins = ", ".join(f"%{t}" + (":" + _tensor(g.tensors[t]) if g.tensors[t].is_const else "")
                    for t in node.inputs)
    outs = ", ".join(f"%{t}:{_tensor(g.tensors[t])}" for t in node.outputs)
    src = f"  # {', '.join(node.source)}" if node.source else ""
    return f"{outs} = {node.op.value}({ins}){_attrs(node)}{src}"


def format_graph(g: Graph) -> str:
    lines = [f"graph {g.name} ("
             + ", ".join(f"%{n}:{_tensor(g.tensors[n])}" for n in g.inputs) + ")"]
    lines += ["  " + format_node(g, n) for n in g.nodes]
    lines.append("  return " + ", ".join(f"%{n}" for n in g.outputs))
    return "\n".join(lines)
