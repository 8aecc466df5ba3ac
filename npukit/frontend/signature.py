"""A model file's interface as the file states it, before any import: inputs and outputs
(name, dtype, shape with dynamic dims marked) and its operator histogram. Also binds input
values (`input_values`, `--input-value`) to inputs, checked against that interface."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError, ModelError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str                              # numpy's name: float32, int64, ...
    shape: tuple[int | str, ...] | None     # a str is a dynamic dim (its symbol or "?"); None: unknown rank

    @property
    def dynamic(self) -> tuple[int, ...]:
        """Indices of the dims the file leaves open (all of them if the rank is unknown)."""
        return tuple(i for i, d in enumerate(self.shape or ()) if isinstance(d, str))

    @property
    def is_static(self) -> bool:
        return self.shape is not None and not self.dynamic

    @property
    def batch_only(self) -> bool:
        """Only the leading dim is open: the ONNX importer takes it as batch 1."""
        return self.shape is not None and len(self.shape) > 1 and self.dynamic == (0,)

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype,
                "shape": list(self.shape) if self.shape is not None else None, "dynamic": list(self.dynamic)}

    def __str__(self) -> str:
        dims = "?" if self.shape is None else ",".join(map(str, self.shape))
        return f"{self.name}: {self.dtype}[{dims}]"


@dataclass(frozen=True)
class Signature:
    format: str                             # onnx | tflite
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    operators: dict[str, int]               # op type -> count, most frequent first (top-level graph)
    node_names: frozenset[str] = field(default=frozenset(), repr=False)   # every node, subgraphs too

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)


def read_signature(path: str | Path) -> Signature:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _onnx(path)
    if suffix == ".tflite":
        return _tflite(path)
    raise ModelError(f"unsupported model format {suffix!r} (expected .onnx or .tflite)")


def _histogram(ops) -> dict[str, int]:
    return dict(Counter(ops).most_common())


def _onnx(path: Path) -> Signature:
    import onnx
    from .onnx_check import read_model
    g = read_model(path, external=False).graph      # the signature needs no weights

    def spec(vi) -> TensorSpec:
        tt = vi.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)).name if tt.elem_type else "undefined"
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                          for d in tt.shape.dim)
        return TensorSpec(vi.name, dtype, shape)

    def names(graph):
        for node in graph.node:      # unnamed nodes as the importer names them
            yield node.name or f"{node.op_type}:{node.output[0] if node.output else ''}"
            for a in node.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    yield from names(sub)
    inits = {i.name for i in g.initializer}
    ops = (n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}" for n in g.node)
    return Signature("onnx", tuple(spec(vi) for vi in g.input if vi.name not in inits),
                     tuple(spec(vi) for vi in g.output), _histogram(ops), frozenset(names(g)))


def _tflite(path: Path) -> Signature:
    try:
        from . import tflite_read as rd
    except ImportError as e:
        raise InputError(f"TFLite models need ai-edge-litert ({e.name or e}): "
                         "pip install 'npukit[tflite]'") from None
    from .tflite_resize import read_resized
    model = read_resized(path, {}, sizes_given=False)
    sg = model.subgraphs[0]

    def spec(i: int) -> TensorSpec:
        t = sg.tensors[i]
        sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else None
        dims = tuple(int(d) for d in (sig if sig is not None else rd.shape(t)))
        return TensorSpec(rd.tensor_name(t, i), np.dtype(rd.NP_TYPES.get(t.type, np.void)).name,
                          tuple("?" if d < 0 else d for d in dims))
    ops = [rd.op_name(model, op) for op in sg.operators or ()]
    return Signature("tflite", tuple(spec(i) for i in sg.inputs), tuple(spec(i) for i in sg.outputs),
                     _histogram(ops))


def bind_values(sig: Signature, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each value as an array of its input's dtype, checked: the name is an input of the
    model, the value's kind suits the input's dtype (an int for an integer input, a number
    for a float one, a bool for a bool one) without overflow, and its shape matches."""
    if values and sig.format != "onnx":
        raise InputError("input values bind inputs of ONNX models only (a TFLite model's graph "
                         "has no shape or control-flow subgraphs left to fold)")
    out = {}
    for name, value in values.items():
        spec = sig.input(name)
        if spec is None:
            raise InputError(f"input value for {name!r}: not an input of the model "
                             f"(inputs: {', '.join(t.name for t in sig.inputs)})")
        want: np.dtype[Any] = np.dtype(spec.dtype) if spec.dtype != "undefined" else np.dtype(np.float32)
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise InputError(f"input value for {name!r}: not an array ({e})") from None
        fits = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}.get(want.kind, "")
        if arr.dtype.kind not in fits:
            raise InputError(f"input value for {name!r}: {arr.dtype.name} given, the input is {want.name}")
        if want.kind in "iu" and arr.size and (int(arr.min()) < np.iinfo(want).min or
                                               int(arr.max()) > np.iinfo(want).max):
            raise InputError(f"input value for {name!r}: does not fit the input's {want.name}")
        if spec.shape is not None and (arr.ndim != len(spec.shape) or any(
                isinstance(d, int) and d != n for d, n in zip(spec.shape, arr.shape))):
            dims = ",".join(map(str, spec.shape))
            raise InputError(f"input value for {name!r}: shape {list(arr.shape)}, the input's is [{dims}]")
        out[name] = arr.astype(want)
    return out
