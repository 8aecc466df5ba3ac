"""The compiled program and its `.npub` form: everything the simulator may read."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from ..errors import BinaryError
from ..limits import BINARY_BYTES, LAYERS, META_DEPTH
from . import container, serial
from .encoding import decode, encode
from .instructions import Instr

if TYPE_CHECKING:
    from . import validate

FORMAT = (container.FORMAT_MAJOR, container.FORMAT_MINOR)


@dataclass(frozen=True)
class IoTensor:
    name: str
    dtype: str            # the integer type inside the NPU
    shape: tuple[int, ...]
    space: int
    addr: int
    scale: float
    zero_point: int
    is_float: bool        # the model's own type is float: quantise / dequantise at the boundary
    perm: tuple[int, ...] = ()   # host-side layout change: NPU = user.transpose(perm) for inputs,
                                 # user = NPU.transpose(perm) for outputs
    declared: str = ""    # an integer input's type in the model when not `dtype` (ONNX int64 ids)


@dataclass(frozen=True)
class Layer:
    name: str
    op: str
    nodes: tuple[str, ...]
    target: str           # npu | host
    macs: int
    min_bytes: int        # weights + graph inputs/outputs + forced spills (off-chip lower bound)
    min_region_bytes: dict   # the same, per off-chip region
    vpu_ops: int
    reason: str = ""      # why a host layer is not on the NPU
    detail: dict = field(default_factory=dict)   # notes for people ("tiling": the tiling in words)
    tiling: dict = field(default_factory=dict)   # the schedule's tiling (schedule.plan.tiling_dict)
    depthwise_taps: int = 0   # a depthwise conv's kernel taps (the roofline's MXU peak)


@dataclass(frozen=True)
class Region:
    name: str
    space: int
    image: bytes          # initial contents (constants and a zeroed arena)


@dataclass(frozen=True)
class Program:
    arch_toml: str
    instructions: list[Instr]
    regions: list[Region]
    inputs: list[IoTensor]
    outputs: list[IoTensor]
    host_segments: list      # data-only encoded node records (see codegen.host)
    host_blobs: list
    layers: list[Layer]
    meta: dict

    def to_bytes(self, fingerprint: str) -> bytes:
        sections = {
            "arch": self.arch_toml.encode(),
            "code": encode(self.instructions),
            "io": json.dumps({"inputs": [asdict(t) for t in self.inputs],
                              "outputs": [asdict(t) for t in self.outputs]}).encode(),
            "layers": json.dumps([asdict(layer) for layer in self.layers]).encode(),
            "host": json.dumps(self.host_segments).encode(),
            "host_arrays": serial.pack_blobs(self.host_blobs),
            "regions": json.dumps([{"name": r.name, "space": r.space} for r in self.regions]).encode(),
        }
        for r in self.regions:
            sections[f"region.{r.name}"] = r.image
        return container.pack(sections, {**self.meta, "format": list(FORMAT), "arch_fingerprint": fingerprint})

    @staticmethod
    def from_bytes(data: bytes) -> "Program":
        """The program of a `.npub` image, every section checked against its schema first
        (isa.validate; the host segments' records: sim.segments, which npukit.loads runs next);
        BinaryError for anything malformed, beyond a limit or out of range."""
        from . import validate      # the schemas are built only when a binary is read
        if isinstance(data, (bytes, bytearray, memoryview)):
            BINARY_BYTES.check(len(data), "the binary", BinaryError)
        sections, meta = container.unpack(data)
        missing = [s for s in _SECTIONS if s not in sections]
        if missing:
            raise BinaryError(f"corrupt binary: no {missing[0]!r} section")
        META_DEPTH.check(validate.nesting(meta), "the nesting of the binary's meta", BinaryError)
        try:
            arch_toml = sections["arch"].decode()
        except UnicodeDecodeError:
            raise BinaryError("corrupt binary: the 'arch' section is not UTF-8 text") from None
        io = validate.parse(_IoSection, validate.load_json(sections["io"], "io"), "io")
        regions = [validate.parse(validate.RegionRecord, r, f"region {i}")
                   for i, r in enumerate(_list(validate.load_json(sections["regions"], "regions"), "regions"))]
        for r in regions:
            if f"region.{r.name}" not in sections or sum(q.name == r.name or q.space == r.space for q in regions) > 1:
                raise BinaryError(f"corrupt binary: region {r.name!r} is repeated or has no section")
        layer_table = _list(validate.load_json(sections["layers"], "layers"), "layers")
        LAYERS.check(len(layer_table), "the binary's layer table", BinaryError)
        layers = [validate.parse(validate.LayerRecord, d, f"layer {i}") for i, d in enumerate(layer_table)]
        hosts = _list(validate.load_json(sections["host"], "host"), "host")
        for i, h in enumerate(hosts):
            validate.host_segment(h, f"host segment {i}")
        instructions = decode(sections["code"])
        validate.check_indices(instructions, len(layers), len(hosts))
        prog = Program(
            arch_toml=arch_toml, instructions=instructions,
            regions=[Region(r.name, r.space, sections[f"region.{r.name}"]) for r in regions],
            inputs=[_io(validate.io_tensor(t, f"input {i}")) for i, t in enumerate(io.inputs)],
            outputs=[_io(validate.io_tensor(t, f"output {i}")) for i, t in enumerate(io.outputs)],
            host_segments=hosts, host_blobs=serial.unpack_blobs(sections["host_arrays"]),
            layers=[Layer(**{**d.model_dump(), "nodes": tuple(d.nodes)}) for d in layers], meta=meta)
        return prog


_SECTIONS = ("arch", "code", "io", "layers", "host", "host_arrays", "regions")


class _IoSection(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    inputs: list[dict]
    outputs: list[dict]


def _list(data, what: str) -> list:
    if not isinstance(data, list):
        raise BinaryError(f"corrupt binary: the {what!r} section is not a list")
    return data


def _io(r: validate.IoRecord) -> IoTensor:
    return IoTensor(**{**r.model_dump(), "shape": tuple(r.shape), "perm": tuple(r.perm)})


__all__ = ["Program", "IoTensor", "Layer", "Region", "Instr", "FORMAT"]
