"""`npukit info`: a model's interface, operator histogram and where each layer would run."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..frontend.signature import TensorSpec


@dataclass(frozen=True)
class ModelInfo:
    """What `npukit.info` found in a model file: its interface (`inputs`, `outputs`: TensorSpec
    name, dtype, shape as the file states it, dynamic dims marked), the operator histogram, and
    where each layer would run on `arch` (`placement`: one Placement(node, op, target "npu" or
    "host", reason) per layer, or None with the reason in `note`). `str()` is `npukit info`'s
    text; `to_dict()` its JSON; `by_target()` the layers per op on each target."""
    model: str
    format: str                                 # onnx | tflite
    arch: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    operators: dict[str, int]                   # the file's op types, most frequent first
    placement: tuple | None                     # compiler.Placement per layer; None: not known (see `note`)
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
