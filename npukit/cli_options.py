"""The command line's shared option declarations: the fixed choices as Enums (typer checks
them while parsing) and the options several commands take. Imports only typer and the
choice tables: `npukit --help` loads this."""
from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Iterable, TypeAlias, cast

import typer

from .choices import HOST_POLICIES, METHODS
from .codegen.options import CHOICES


def _choices(name: str, values: Iterable[str]) -> type[Enum]:
    """An option's fixed values as an Enum: typer checks them while parsing the command line."""
    return cast(type[Enum], Enum(name, {v: v for v in values}, type=str))


if TYPE_CHECKING:   # built at run time from the option tables: a checker sees plain Enums
    Method: TypeAlias = Enum
    Dataflow: TypeAlias = Enum
    Compress: TypeAlias = Enum
    Host: TypeAlias = Enum
    Precision: TypeAlias = Enum
else:
    Method = _choices("Method", METHODS)
    Dataflow = _choices("Dataflow", CHOICES["dataflow"])
    Compress = _choices("Compress", CHOICES["compress_weights"])
    Host = _choices("Host", HOST_POLICIES)
    Precision = _choices("Precision", CHOICES["precision"])

ARCH = typer.Option("npu-m", "--arch", help="preset name or arch TOML file")
SHAPES = typer.Option(None, "--input-shape", help="NAME=D0,D1,... fixes dynamic dims (repeatable)")
CALIB = typer.Option(None, "--calib", help=".npz with one [N, *shape] array per model input")
METHOD = typer.Option(Method.__members__["auto"], "--calib-method",
                      help="how activation ranges are chosen (auto: hybrid for a dense output map, else minmax)")
DATAFLOW = typer.Option(Dataflow.__members__["arch"], "--dataflow", help="the MXU dataflow (arch: the arch file's)")
COMPRESS = typer.Option(Compress.__members__["auto"], "--compress-weights", help="weight blocks stored compressed, or not")
OPTION = typer.Option(None, "--option", help="NAME=VALUE: any compiler option (CompileOptions field), "
                      "e.g. timed_candidates=1, equalize=auto, bias_correction=auto, flat_clip=auto, gptq=auto (repeatable)")
TRACE = typer.Option(None, "--trace", help="write the engine timeline as Chrome trace-event JSON (Perfetto)")
VALUES = typer.Option(None, "--input-value", help="NAME=VALUE or NAME=@FILE.npy: bind an input to a "
                      "constant at compile time (repeatable)")
PRECISION = typer.Option(Precision.__members__["int8"], "--precision",
                         help="int16: 16x8 activations wherever the NPU runs them; auto: where needed for --min-sqnr")
MIN_SQNR = typer.Option(30.0, "--min-sqnr", help="--precision auto: worst output SQNR (dB) to reach on held-out samples")
HOST = typer.Option(Host.__members__["auto"], "--host", help="auto: run what the NPU cannot on the host CPU; never: refuse")
