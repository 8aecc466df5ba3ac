"""What loading a `.npub` checks before anything is built from it (docs/robustness.md).

The container has checked every byte against its CRC; a CRC proves nothing about intent, so
here every JSON section's nesting is bounded (META_DEPTH) before it is parsed, every record
is checked against its schema (strict types, ranges, no unknown fields), and every index one
record gives into another (an instruction's layer or host segment) is in range.
`check_against_arch` then checks what needs the arch: memory spaces, and every address and
extent an instruction, I/O tensor or host segment names, within its buffer or region.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..arch import Arch
from ..errors import BinaryError
from ..limits import META_DEPTH, TENSOR_ELEMENTS, TENSOR_RANK
from . import instructions as I
from .ranges import accesses, moved_bytes

DType = Literal["float32", "int8", "uint8", "int16", "int32", "int64", "bool"]   # ir.graph.DType values
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_WORD = 1 << 40          # any one instruction field: beyond every buffer, offset and stride


def load_json(data: bytes, what: str) -> Any:
    """A JSON section, its nesting measured (strings skipped) and bounded before parsing."""
    depth = nesting_of_text(data)
    META_DEPTH.check(depth, f"the nesting of the binary's {what!r} section", BinaryError)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BinaryError(f"corrupt {what!r} section: {e}") from None


def nesting_of_text(data: bytes) -> int:
    codes = np.frombuffer(_STRING.sub(b'""', data), np.uint8)
    step = np.isin(codes, (91, 123)).astype(np.int64) - np.isin(codes, (93, 125))
    return int(np.cumsum(step).max(initial=0))


def nesting(obj: Any) -> int:
    """The nesting depth of parsed JSON data (iterative: any depth)."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d + 1)
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token}")


_STRICT = ConfigDict(strict=True, extra="forbid")
Count = Annotated[int, Field(ge=0, le=1 << 62)]
Shape = Annotated[list[Annotated[int, Field(ge=0, le=TENSOR_ELEMENTS.value)]], Field(max_length=TENSOR_RANK.value)]


class IoRecord(BaseModel):
    model_config = _STRICT
    name: str
    dtype: DType
    shape: Shape
    space: Count
    addr: Count
    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    zero_point: int
    is_float: bool
    perm: Annotated[list[int], Field(max_length=TENSOR_RANK.value)] = []
    declared: Literal["", "int64", "int32", "int16", "int8", "uint8"] = ""


class LayerRecord(BaseModel):
    model_config = _STRICT
    name: str
    op: str
    nodes: list[str]
    target: Literal["npu", "host"]
    macs: Count
    min_bytes: Count
    min_region_bytes: dict[str, Count]
    vpu_ops: Count
    reason: str = ""
    detail: dict[str, Any] = {}
    tiling: dict[str, Any] = {}
    depthwise_taps: Count = 0


class RegionRecord(BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,16}$")]
    space: Annotated[int, Field(ge=I.REGION0, le=I.REGION0 + 1024)]


class QuantRecord(BaseModel):          # ir.graph.QParams
    model_config = _STRICT
    scale: Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1)]
    zero_point: Annotated[list[int], Field(min_length=1)]
    axis: int | None = None


class ArrayRef(BaseModel):            # an array of the host_arrays section
    model_config = _STRICT
    array: Count


class HostTensorRecord(BaseModel):
    model_config = _STRICT
    shape: Shape
    dtype: DType
    quant: QuantRecord | None
    data: ArrayRef | None = None      # a constant, or else a place:
    space: Count | None = None
    addr: Count | None = None


class HostSegmentRecord(BaseModel):
    """One node the host runs: `kind` names its operator; `attrs` and `params` are the fields
    of that kind's records (quant.records lists them and checks them at load)."""
    model_config = _STRICT
    kind: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    name: str
    attrs: dict[str, Any]
    params_kind: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")] | None
    params: dict[str, Any] | None
    inputs: list[HostTensorRecord]
    outputs: list[HostTensorRecord]


Record = TypeVar("Record", bound=BaseModel)


def parse(model: type[Record], data: Any, where: str) -> Record:
    """`data` as a `model` record; BinaryError naming the first field that does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(map(str, err["loc"]))
        raise BinaryError(f"corrupt binary: {where}{'.' + loc if loc else ''}: {err['msg']}") from None


def io_tensor(d: Any, where: str) -> IoRecord:
    r = parse(IoRecord, d, where)
    elements(r.shape, f"{where} ({r.name!r})")
    lo, hi = _dtype_range(r.dtype)
    if not lo <= r.zero_point <= hi:
        raise BinaryError(f"corrupt binary: {where} ({r.name!r}) zero point {r.zero_point} outside "
                          f"the {r.dtype} range")
    if r.perm and sorted(r.perm) != list(range(len(r.shape))):
        raise BinaryError(f"corrupt binary: {where} ({r.name!r}) perm {r.perm} is not a permutation "
                          f"of its {len(r.shape)} dimensions")
    return r


def host_segment(d: Any, where: str) -> HostSegmentRecord:
    r = parse(HostSegmentRecord, d, where)
    for kind, refs in (("input", r.inputs), ("output", r.outputs)):
        for j, t in enumerate(refs):
            elements(t.shape, f"{where} {kind} {j}")
            if (t.data is None) == (t.space is None or t.addr is None) or kind == "output" and t.data is not None:
                raise BinaryError(f"corrupt binary: {where} {kind} {j} needs either constant data or "
                                  f"a space and an address")
    return r


def elements(shape, what: str) -> int:
    n = math.prod(shape)
    TENSOR_ELEMENTS.check(n, f"{what}: its element count", BinaryError)
    return n


def _dtype_range(dtype: str) -> tuple[int, int]:
    if dtype in ("float32", "bool"):
        return 0, 0 if dtype == "float32" else 1
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def check_indices(program: list[I.Instr], n_layers: int, n_segments: int) -> None:
    """Every instruction's layer and host segment index in range, every field a bounded word."""
    for i, ins in enumerate(program):
        if not 0 <= ins.layer < n_layers:
            raise BinaryError(f"corrupt binary: instruction {i} names layer {ins.layer}, the layer table "
                              f"has {n_layers}")
        if isinstance(ins, I.Host) and not 0 <= ins.segment < n_segments:
            raise BinaryError(f"corrupt binary: instruction {i} runs host segment {ins.segment}, the binary "
                              f"has {n_segments}")
        for name, value in vars(ins).items():
            if name != "deps" and any(abs(v) > _WORD for v in (value if isinstance(value, tuple) else (value,))):
                raise BinaryError(f"corrupt binary: instruction {i} ({type(ins).__name__.upper()}) field "
                                  f"{name} = {value} is beyond any memory")


def check_against_arch(prog, arch: Arch) -> None:
    """The program's regions are the arch's, and every place it names lies in its memory."""
    names = [r.name for r in arch.regions]
    for r in prog.regions:
        if r.name not in names or r.space != I.REGION0 + names.index(r.name):
            raise BinaryError(f"corrupt binary: region {r.name!r} (space {r.space}) is not a region of "
                              f"arch {arch.name!r} at that space")
    sizes = {I.ABUF: arch.abuf_bytes, I.WBUF: arch.wbuf_bytes, I.ACC: arch.acc_bytes}
    sizes |= {r.space: len(r.image) for r in prog.regions}
    for kind, tensors in (("input", prog.inputs), ("output", prog.outputs)):
        for t in tensors:
            _within(sizes, t.space, t.addr, t.addr + math.prod(t.shape) * np.dtype(t.dtype).itemsize,
                    f"{kind} {t.name!r}")
    for layer in prog.layers:
        unknown = set(layer.min_region_bytes) - set(names)
        if unknown:
            raise BinaryError(f"corrupt binary: layer {layer.name!r} counts bytes of region {sorted(unknown)[0]!r}, "
                              f"which arch {arch.name!r} does not have")
    for s, rec in enumerate(prog.host_segments):
        for t in (*rec["inputs"], *rec["outputs"]):
            if "space" in t:
                _within(sizes, t["space"], t["addr"], t["addr"] + math.prod(t["shape"]) * np.dtype(t["dtype"]).itemsize,
                        f"host segment {s}")
    for i, ins in enumerate(prog.instructions):
        for space, lo, hi in _places(ins):
            _within(sizes, space, lo, hi, f"instruction {i} ({type(ins).__name__.upper()})")


def _places(ins: I.Instr) -> Sequence[tuple[int, int, int]]:
    """(space, lo, hi) of every memory range the instruction names."""
    if isinstance(ins, I.Dma):
        if min(ins.shape) < 0 or ins.elem < 1:
            raise BinaryError(f"corrupt binary: DMA of {list(ins.shape)} elements of {ins.elem} bytes")
        if min(ins.shape) == 0:
            return [(ins.src_space, ins.src, ins.src), (ins.dst_space, ins.dst, ins.dst)]
        return [*accesses(ins), (ins.dst_space, 0, moved_bytes(ins))]   # room for what it delivers
    if isinstance(ins, I.DwConv) and ins.engine not in (I.Engine.MXU, I.Engine.VPU):
        raise BinaryError(f"corrupt binary: DWCONV on engine {ins.engine}")
    if isinstance(ins, I.LayerNorm) and (min(ins.rows, ins.n) < 1 or {ins.in_bytes, ins.out_bytes} - {1, 2}):
        raise BinaryError(f"corrupt binary: LAYERNORM of {ins.rows} rows of {ins.n} elements, {ins.in_bytes} bytes "
                          f"in, {ins.out_bytes} out (rows and elements positive; 1 or 2 bytes)")
    if isinstance(ins, I.Softmax) and (ins.kind not in (0, 1, 2) or not I.SOFTMAX_WHOLE <= ins.phase <= I.SOFTMAX_OUT):
        raise BinaryError(f"corrupt binary: SOFTMAX kind {ins.kind} phase {ins.phase} (kind 0 to 2, phase "
                          f"{I.SOFTMAX_WHOLE} to {I.SOFTMAX_OUT})")
    if isinstance(ins, I.GruCell) and (min(ins.n, ins.c) < 1 or ins.mode not in (0, 1)):
        raise BinaryError(f"corrupt binary: GRU_CELL mode {ins.mode} of {ins.n} rows of {ins.c} cells (mode 0 or 1; "
                          "rows and cells positive)")
    return accesses(ins)


def _within(sizes: dict[int, int], space: int, lo: int, hi: int, what: str) -> None:
    if space not in sizes:
        raise BinaryError(f"corrupt binary: {what} names memory space {space}, which does not exist")
    if not 0 <= lo <= hi <= sizes[space]:
        raise BinaryError(f"corrupt binary: {what} reaches bytes [{lo}, {hi}) of space {space}, "
                          f"which holds {sizes[space]}")
