"""`npukit info`: a model's interface, operator histogram and where each layer would run."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..frontend.signature import TensorSpec


@dataclass(frozen=True)
class LayerPlacement:
    node: str                   # the IR layer
    op: str                     # its operator (a host-float node: the ONNX operator it runs)
    target: str                 # npu | host
    reason: str                 # why the host ("" on the NPU)
    source: tuple[str, ...]     # the model's nodes it stands for

    def to_dict(self) -> dict:
        return {"node": self.node, "op": self.op, "target": self.target, "reason": self.reason,
                "source": list(self.source)}


@dataclass(frozen=True)
class ModelInfo:
    model: str
    format: str                                 # onnx | tflite
    arch: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    operators: dict[str, int]                   # the file's op types, most frequent first
    placement: tuple[LayerPlacement, ...] | None   # None: not known (see `note`)
    note: str = ""                              # why placement is missing

    def by_target(self) -> dict[str, dict[str, int]]:
        """{"npu": {op: layers}, "host": {op: layers}}."""
        out: dict[str, Counter] = {"npu": Counter(), "host": Counter()}
        for p in self.placement or ():
            out[p.target][p.op] += 1
        return {k: dict(v.most_common()) for k, v in out.items()}

    def to_dict(self) -> dict:
        return {"model": self.model, "format": self.format, "arch": self.arch,
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
                "operators": dict(self.operators),
                "placement": None if self.placement is None else [p.to_dict() for p in self.placement],
                "by_target": self.by_target() if self.placement is not None else None, "note": self.note}

    def __str__(self) -> str:
        lines = [f"{self.model} ({self.format})", "inputs:"]
        lines += [f"  {t}" + (f"  (dynamic dims {list(t.dynamic)})" if t.dynamic else "") for t in self.inputs]
        lines += ["outputs:"] + [f"  {t}" for t in self.outputs]
        lines.append(f"operators ({sum(self.operators.values())} nodes): "
                     + ", ".join(f"{op} {n}" for op, n in self.operators.items()))
        if self.placement is None:
            return "\n".join(lines + [self.note])
        tally = self.by_target()
        hosted = [p for p in self.placement if p.target == "host"]
        lines.append(f"placement on {self.arch}: {len(self.placement) - len(hosted)} layers on the NPU, "
                     f"{len(hosted)} on the host")
        lines.append("  npu:  " + (", ".join(f"{op} {n}" for op, n in tally["npu"].items()) or "-"))
        lines += [f"  host: {p.node} ({p.op}): {p.reason}" for p in hosted]
        return "\n".join(lines)


def placement(g, arch, options=None) -> tuple[LayerPlacement, ...]:
    """Where each layer of an imported graph would run on `arch` (with CompileOptions
    `options`), decided as codegen.lower
    decides it (npu_support) on the graph lowering would see: optimised and quantised as the
    compiler does, with stand-in ranges and no integer params (placement depends on types
    and shapes, not on scales), so no calibration data is needed."""
    from ..codegen.boundary import absorb_boundary_transposes
    from ..codegen.lower import npu_support, onchip_bytes
    from ..ir.graph import Op
    from ..opt.pipeline import optimize
    from ..quant.calibrate import Range
    from ..quant.quantize import attach_params, quantize_graph
    from ..quant.wide import magnitude_int16
    if g.is_quantised:
        qg = attach_params(g)
    else:
        g = optimize(g)
        qg = quantize_graph(g, {n: Range(-1.0, 1.0) for n, t in g.tensors.items() if not t.is_const},
                            magnitude_int16(g), params=False)
    qg, _ = absorb_boundary_transposes(qg)
    work = arch.abuf_bytes - onchip_bytes(arch, options)
    out = []
    for node in qg.nodes:
        reason = npu_support(qg, node, work)
        op = node.op.value
        if node.op is Op.HOST_FLOAT:        # an ONNX node kept in float: name its operator
            op = getattr(node.attrs, "op_type", op)
            reason = reason.replace(Op.HOST_FLOAT.value, f"{op} (run in float on the host)")
        out.append(LayerPlacement(node.name, op, "host" if reason else "npu", reason,
                                  tuple(node.source or (node.name,))))
    return tuple(out)
