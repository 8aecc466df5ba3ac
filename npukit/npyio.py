"""Reading .npy / .npz arrays a user (or a binary) hands us, checked before allocation.

numpy allocates an array of the size its header declares before reading the data, and a
zip member inflates to whatever its compressed stream holds. Here each member's header is
read first and must be consistent with the member's stored size, of a plain numeric dtype,
and within the limits; nothing is unpickled.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from .errors import NpukitError, first_line
from .limits import TENSOR_ELEMENTS, UNPACKED_BYTES


def load_npz(source: str | Path | bytes, what: str, error: type[NpukitError]) -> dict[str, np.ndarray]:
    """{name: array} of an .npz file (a path) or image (bytes); `error` names `what`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        npy = _starts(source, b"\x93NUMPY")
        raise error(f"cannot read {what}: " + ("a .npy file, not an .npz archive" if npy else _reason(exc))) from None
    with archive:
        infos = archive.infolist()
        UNPACKED_BYTES.check(sum(i.file_size for i in infos), f"{what} unpacked", error)
        out: dict[str, np.ndarray] = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                with archive.open(info) as member:
                    out[name] = read_array(member, info.file_size, f"{what}[{name!r}]", error)
            except error:
                raise
            except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError) as exc:
                raise error(f"cannot read {what}[{name!r}]: {_reason(exc)}") from None
    return out


def load_npy(path: str | Path, what: str, error: type[NpukitError]) -> np.ndarray:
    """The array of an .npy file."""
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as f:
            return read_array(f, size, what, error)
    except error:
        raise
    except (OSError, ValueError, EOFError) as exc:
        npz = _starts(path, b"PK")
        raise error(f"cannot read {what}: " + ("an .npz archive; give one array as a .npy file" if npz
                                               else _reason(exc))) from None


def _starts(source: str | Path | bytes, magic: bytes) -> bool:
    if isinstance(source, bytes):
        return source.startswith(magic)
    try:
        with open(source, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def read_array(f: IO[bytes], stored: int, what: str, error: type[NpukitError]) -> np.ndarray:
    """The .npy array `f` holds in its `stored` bytes, refused (as `error`, naming `what`) unless
    its header is one numpy writes for a numeric array (versions 1.0 and 2.0, at most 1 KiB),
    within TENSOR_ELEMENTS and consistent with `stored`."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise error(f"cannot read {what}: unknown .npy version {version}")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(f, max_header_size=1024)  # checks the header's syntax
    if dtype.hasobject or dtype.kind not in "biufc":
        raise error(f"cannot read {what}: it holds dtype {dtype}; only numeric arrays are read")
    count = int(np.prod(shape, dtype=object))
    TENSOR_ELEMENTS.check(count, what, error)
    if count * dtype.itemsize != stored - f.tell():
        raise error(f"cannot read {what}: its header declares {count * dtype.itemsize} bytes of "
                    f"data but {stored - f.tell()} are stored")
    data = f.read(count * dtype.itemsize)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return (array.reshape(shape[::-1]).T if fortran else array.reshape(shape)).copy()


def _reason(exc: BaseException) -> str:
    return first_line(getattr(exc, "strerror", None) or exc, 200)
