"""Data-only encoding of IR attributes and kernel parameters for host segments.

Dataclasses become {"__dc__": name, ...fields}, arrays go to a side list stored as .npz
(loaded with allow_pickle=False), tuples and enums are tagged. Only classes in the
registry can be rebuilt: nothing is imported or evaluated from the file.
"""
from __future__ import annotations

import dataclasses
import enum
import io

import numpy as np

from ..errors import BinaryError
from ..ir import graph as ir
from ..quant import kernels_mxu, kernels_vpu, quantize


def _registry() -> dict[str, type]:
    out = {}
    for module in (ir, kernels_mxu, kernels_vpu, quantize):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum)):
                out[name] = obj
    return out


_CLASSES = _registry()


def to_data(obj, blobs: list[np.ndarray]):
    if isinstance(obj, enum.Enum):
        return {"__enum__": type(obj).__name__, "value": obj.value}
    if dataclasses.is_dataclass(obj):
        return {"__dc__": type(obj).__name__,
                **{f.name: to_data(getattr(obj, f.name), blobs) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        blobs.append(obj)
        return {"__nd__": len(blobs) - 1}
    if isinstance(obj, tuple):
        return {"__tuple__": [to_data(v, blobs) for v in obj]}
    if isinstance(obj, list):
        return [to_data(v, blobs) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v, blobs) for k, v in obj.items()}
    if isinstance(obj, (np.integer, np.bool_)):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, (int, float, str, bool)):
        return obj
    raise TypeError(f"cannot encode {type(obj).__name__}")


def from_data(data, blobs: list[np.ndarray]):
    if isinstance(data, list):
        return [from_data(v, blobs) for v in data]
    if not isinstance(data, dict):
        return data
    if "__enum__" in data:
        return _cls(data["__enum__"])(data["value"])
    if "__dc__" in data:
        cls = _cls(data["__dc__"])
        return cls(**{k: from_data(v, blobs) for k, v in data.items() if k != "__dc__"})
    if "__nd__" in data:
        i = data["__nd__"]
        if not isinstance(i, int) or not 0 <= i < len(blobs):
            raise BinaryError(f"host segment refers to missing array {i}")
        return blobs[i]
    if "__tuple__" in data:
        return tuple(from_data(v, blobs) for v in data["__tuple__"])
    return {k: from_data(v, blobs) for k, v in data.items()}


def _cls(name: str) -> type:
    if name not in _CLASSES:
        raise BinaryError(f"binary names an unknown type {name!r}")
    return _CLASSES[name]


def pack_blobs(blobs: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, *blobs)
    return buf.getvalue()


def unpack_blobs(data: bytes) -> list[np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]
    except Exception as e:  # any malformed archive is a corrupt binary
        raise BinaryError(f"corrupt array section: {e}") from None
