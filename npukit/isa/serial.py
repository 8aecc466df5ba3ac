"""Typed, data-only encoding of records (frozen dataclasses) for a binary's host segments.

A record is written as a JSON object of its fields and nothing else: no class name, no tag.
Reading is driven by the type the reader expects (`from_data(hint, ...)`): a record's field
set must be exactly its class's (required ones present), every value of its declared type;
enums by value, tuples as lists, arrays as {"array": i} into a side list stored as .npz
(loaded with allow_pickle=False). Nothing is imported, looked up by name or evaluated.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import io
import types
import typing
import zipfile
from typing import Any

import numpy as np

from ..errors import BinaryError, NpukitError, first_line
from ..limits import UNPACKED_BYTES
from ..npyio import read_array


def to_data(obj: Any, blobs: list[np.ndarray]) -> Any:
    """JSON data for a record, an enum, an array (appended to `blobs`), a tuple or a scalar."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name), blobs) for f in dataclasses.fields(obj)}
    if isinstance(obj, np.ndarray):
        blobs.append(obj)
        return {"array": len(blobs) - 1}
    if isinstance(obj, (tuple, list)):
        return [to_data(v, blobs) for v in obj]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, (int, float, str, bool)):
        return obj
    raise TypeError(f"cannot encode {type(obj).__name__}")


def from_data(hint: Any, data: Any, blobs: list[np.ndarray], where: str) -> Any:
    """The value of type `hint` that `to_data` wrote as `data`; BinaryError naming `where`
    (a dotted field path) for anything of another shape."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return from_data(options[0], data, blobs, where)
        for a in options:      # scalar unions only (e.g. int | float): the first that fits
            try:
                return from_data(a, data, blobs, where)
            except BinaryError:
                continue
        raise BinaryError(f"{where} is a {type(data).__name__}, not one of {_names(options)}")
    if origin is tuple or hint is tuple:
        if not isinstance(data, list):
            raise BinaryError(f"{where} is a {type(data).__name__}, not a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_data(args[0], v, blobs, f"{where}[{i}]") for i, v in enumerate(data))
        if args and len(args) != len(data):
            raise BinaryError(f"{where} has {len(data)} entries, not {len(args)}")
        return tuple(from_data(a, v, blobs, f"{where}[{i}]") for i, (v, a) in enumerate(zip(data, args)))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(data)
        except (ValueError, TypeError):
            raise BinaryError(f"{where} = {data!r} is not one of the {hint.__name__} values") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, data, blobs, where)
    if hint is np.ndarray:
        i = data.get("array") if isinstance(data, dict) and set(data) == {"array"} else None
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(blobs):
            raise BinaryError(f"{where} does not refer to one of the binary's {len(blobs)} arrays")
        return blobs[i]
    if hint is bool:
        if isinstance(data, bool):
            return data
    elif hint is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif hint is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
    elif hint is str:
        if isinstance(data, str):
            return data
    else:
        raise TypeError(f"{where}: no typed encoding for {hint!r}")   # a record class npukit declared badly
    raise BinaryError(f"{where} is a {type(data).__name__}, not a {hint.__name__}")


def _record(cls: type, data: Any, blobs: list[np.ndarray], where: str) -> Any:
    if not isinstance(data, dict):
        raise BinaryError(f"{where} is a {type(data).__name__}, not a record")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BinaryError(f"{where} has an unknown field {unknown[0]!r}")
    for name, f in fields.items():
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BinaryError(f"{where} has no {name!r}")
    hints = _hints(cls)
    values = {k: from_data(hints[k], v, blobs, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except NpukitError as e:       # a record that checks its own fields (__post_init__)
        raise BinaryError(f"{where}: {first_line(e)}") from None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _names(types_: list[Any]) -> str:
    return ", ".join(getattr(t, "__name__", str(t)) for t in types_)


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
