"""The command line's arguments: output paths checked before work, NAME=VALUE specs parsed,
each problem a one-line InputError naming the flag."""
from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from .codegen.context import CompileOptions
from .codegen.options import parse_option
from .errors import InputError
from .limits import TENSOR_ELEMENTS, TENSOR_RANK
from .npyio import load_npy, load_npz

if TYPE_CHECKING:
    import numpy as np


def output_paths(*paths: Path | None) -> None:
    """Before any work: each output's folder exists (created if missing) and the path is no folder."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise InputError(f"{path} is a folder: give a file name to write")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InputError(f"cannot write {path}: part of {path.parent} is a file, not a folder") from None
        except OSError as e:
            raise InputError(f"cannot create the folder {path.parent} for {path}: {e.strerror or e}") from None


def input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, dims = spec.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise InputError(f"--input-shape {spec!r}: expected NAME=D0,D1,... with integer dims") from None
        if all(d > 0 for d in out[name]):      # (other dims: the loader's own message)
            TENSOR_RANK.check(len(out[name]), f"--input-shape {name}", InputError)
            TENSOR_ELEMENTS.check(math.prod(out[name]), f"--input-shape {name}", InputError)
    return out


def read_npz(path: Path | None) -> dict[str, np.ndarray] | None:
    """The arrays of a --calib .npz file (no pickles)."""
    if path is None:
        return None
    return load_npz(path, f"--calib {path}", InputError)


def compile_options(specs: list[str] | None, **flags: Enum | float) -> CompileOptions:
    """The --dataflow / --compress-weights / --precision ... flags, then each --option NAME=VALUE over them."""
    parsed = dict(parse_option(CompileOptions, spec) for spec in specs or ())
    return CompileOptions(**{**{k: getattr(v, "value", v) for k, v in flags.items()}, **parsed})


def input_values(specs: list[str] | None) -> dict[str, object]:
    """--input-value NAME=VALUE (an int, a number or true/false) or NAME=@FILE.npy."""
    out: dict[str, object] = {}
    for spec in specs or ():
        name, sep, text = spec.partition("=")
        if not sep or not name or not text:
            raise InputError(f"--input-value {spec!r}: expected NAME=VALUE or NAME=@FILE.npy")
        if text.startswith("@"):
            out[name] = load_npy(text[1:], f"--input-value {name} ({text[1:]})", InputError)
            continue
        out[name] = _scalar(text, spec)
    return out


def _scalar(text: str, spec: str) -> int | float | bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    raise InputError(f"--input-value {spec!r}: the value must be a number, true/false or @FILE.npy")
