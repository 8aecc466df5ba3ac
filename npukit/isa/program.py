"""The compiled program and its `.npub` form: everything the simulator may read."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..errors import BinaryError
from . import container, serial
from .encoding import decode, encode
from .instructions import Instr

FORMAT = (1, 0)


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
        sections, meta = container.unpack(data)
        try:
            io = json.loads(sections["io"])
            regions = [Region(r["name"], int(r["space"]), sections[f"region.{r['name']}"])
                       for r in json.loads(sections["regions"])]
            return Program(
                arch_toml=sections["arch"].decode(),
                instructions=decode(sections["code"]),
                regions=regions,
                inputs=[_io(t) for t in io["inputs"]],
                outputs=[_io(t) for t in io["outputs"]],
                host_segments=json.loads(sections["host"]),
                host_blobs=serial.unpack_blobs(sections["host_arrays"]),
                layers=[Layer(**{**d, "nodes": tuple(d["nodes"])}) for d in json.loads(sections["layers"])],
                meta=meta)
        except BinaryError:
            raise
        except (KeyError, ValueError, TypeError, UnicodeDecodeError) as e:
            raise BinaryError(f"corrupt npukit binary: {type(e).__name__}: {e}") from None


def _io(d: dict) -> IoTensor:
    return IoTensor(**{**d, "shape": tuple(int(s) for s in d["shape"]),
                       "perm": tuple(int(p) for p in d.get("perm", ()))})


__all__ = ["Program", "IoTensor", "Layer", "Region", "Instr", "FORMAT"]
