"""Data-only encoding of IR attributes and kernel parameters for host segments.

Dataclasses become {"__dc__": name, ...fields}, arrays go to a side list stored as .npz
(loaded with allow_pickle=False), tuples and enums are tagged. Only classes in the
registry the decoder is given can be rebuilt (the record classes live in the layers above the
ISA; sim.segments names them): nothing is imported or evaluated from the file.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import io
import types
import typing
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import BinaryError, first_line
from ..limits import UNPACKED_BYTES
from ..npyio import read_array


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


def from_data(data, blobs: list[np.ndarray], classes: Mapping[str, type]):
    """The value `to_data` encoded; a record's class is looked up by name in `classes`."""
    if isinstance(data, list):
        return [from_data(v, blobs, classes) for v in data]
    if not isinstance(data, dict):
        return data
    if "__enum__" in data:
        return _cls(data["__enum__"], classes)(data["value"])
    if "__dc__" in data:
        cls = _cls(data["__dc__"], classes)
        values = {k: from_data(v, blobs, classes) for k, v in data.items() if k != "__dc__"}
        _check_fields(cls, values)
        return cls(**values)
    if "__nd__" in data:
        i = data["__nd__"]
        if not isinstance(i, int) or not 0 <= i < len(blobs):
            raise BinaryError(f"host segment refers to missing array {i}")
        return blobs[i]
    if "__tuple__" in data:
        return tuple(from_data(v, blobs, classes) for v in data["__tuple__"])
    return {k: from_data(v, blobs, classes) for k, v in data.items()}


def _check_fields(cls: type, values: dict) -> None:
    """A record's fields are its class's (required ones present), each of its declared type."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    for name, value in values.items():
        if name not in fields:
            raise BinaryError(f"binary gives {cls.__name__} an unknown field {name!r}")
        if not _fits(value, hints.get(name, Any)):
            raise BinaryError(f"binary gives {cls.__name__}.{name} a {type(value).__name__}")
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BinaryError(f"binary gives {cls.__name__} no {name!r}")


@functools.cache
def _hints(cls: type) -> dict:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):        # an annotation this module cannot resolve: unchecked
        return {}


def _fits(value, hint) -> bool:
    """Whether decoded data can be a value of `hint` (numbers interchangeable, as JSON has them)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return not args or len(args) == len(value) and all(_fits(v, a) for v, a in zip(value, args))
    hint = origin or hint
    if hint in (int, float, bool):
        return isinstance(value, (int, float))
    return not isinstance(hint, type) or isinstance(value, hint) or hint in (list, frozenset, set) \
        and isinstance(value, (list, tuple))


def _cls(name: str, classes: Mapping[str, type]) -> type:
    if name not in classes:
        raise BinaryError(f"binary names an unknown type {name!r}")
    return classes[name]


def pack_blobs(blobs: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, *blobs)
    return buf.getvalue()


def unpack_blobs(data: bytes) -> list[np.ndarray]:
    """The arrays of a host_arrays section. npukit stores them uncompressed: a compressed
    member is refused, and every member's size (its .npy header's shape x item size) is
    checked against UNPACKED_BYTES and TENSOR_ELEMENTS before it is read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = z.infolist()
            if [m.filename for m in members] != [f"arr_{i}.npy" for i in range(len(members))]:
                raise BinaryError("corrupt array section: members are not arr_0.npy, arr_1.npy, ...")
            UNPACKED_BYTES.check(sum(m.file_size for m in members), "the host arrays, unpacked", BinaryError)
            return [_member(z, m) for m in members]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
        raise BinaryError(f"corrupt array section: {first_line(e)}") from None


def _member(z: zipfile.ZipFile, m: zipfile.ZipInfo) -> np.ndarray:
    if m.compress_type != zipfile.ZIP_STORED or m.file_size != m.compress_size:
        raise BinaryError(f"corrupt array section: {m.filename} is compressed (npukit stores arrays as they are)")
    with z.open(m) as f:
        return read_array(f, m.file_size, f"host array {m.filename}", BinaryError)
