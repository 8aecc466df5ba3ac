"""The architecture config: one TOML file, validated by frozen pydantic models.

Every problem becomes an `ArchError` whose one-line message names the key, e.g.
"arch config: mxu.rows: Input should be greater than 0 (got 0)".
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from functools import cached_property
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from npukit import limits as L
from npukit.arch import toml_emit
from npukit.arch.messages import one_line
from npukit.arch.tech import DEFAULT_NODE, REGION_KIND_PJ_PER_BYTE, tech_node
from npukit.errors import ArchError, did_you_mean

_MODEL = ConfigDict(strict=True, frozen=True, extra="forbid")
_KEYS_ONLY = {"keys_only": True}    # validation context: each key on its own, no checks across keys

Pos = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)]
Bounds = Mapping[str, tuple[L.Limit, ...]]


def _check_bounds(model: BaseModel, where: str, bounds: Bounds) -> None:
    """Each key of `bounds` within its named limits (types, signs and finiteness are the
    fields' own checks): an ArchError naming the key and the limit."""
    for key, checks in bounds.items():
        value = getattr(model, key)
        if value is not None:
            for limit in checks:
                limit.check(value, f"arch config: {where}{key}", ArchError)


class MxuConfig(BaseModel):
    model_config = _MODEL
    rows: Pos
    cols: Pos
    dataflow: Literal["auto", "ws", "os"] = "auto"
    fold_overlap: bool = True

    @model_validator(mode="after")
    def _bounded(self) -> "MxuConfig":
        _check_bounds(self, "mxu.", {"rows": (L.ARRAY_DIM,), "cols": (L.ARRAY_DIM,)})
        return self


class VpuConfig(BaseModel):
    model_config = _MODEL
    lanes: Pos
    pipeline_depth: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> "VpuConfig":
        _check_bounds(self, "vpu.", {"lanes": (L.VPU_LANES,), "pipeline_depth": (L.PIPELINE_DEPTH,)})
        return self


class SramConfig(BaseModel):
    model_config = _MODEL
    abuf_kib: Pos
    wbuf_kib: Pos
    acc_kib: Pos
    banks: Pos = 8

    @model_validator(mode="after")
    def _bounded(self) -> "SramConfig":
        _check_bounds(self, "sram.", {"abuf_kib": (L.SRAM_KIB,), "wbuf_kib": (L.SRAM_KIB,),
                                      "acc_kib": (L.SRAM_KIB,), "banks": (L.SRAM_BANKS,)})
        return self


class DmaConfig(BaseModel):
    model_config = _MODEL
    channels: Pos = 1
    setup_cycles: int = Field(default=0, ge=0)
    decode_bytes_per_cycle: PosFloat = 32.0   # weight decoder output (one 32-value group a cycle)

    @model_validator(mode="after")
    def _bounded(self) -> "DmaConfig":
        _check_bounds(self, "dma.", {"channels": (L.DMA_CHANNELS,), "setup_cycles": (L.DMA_SETUP_CYCLES,),
                                     "decode_bytes_per_cycle": (L.MIN_DECODE_RATE, L.MAX_DECODE_RATE)})
        return self


class Region(BaseModel):
    """An off-chip (or system) memory. `kind` defaults to the name when it is a known kind,
    else "dram"; `energy_pj_per_byte` defaults to the tech table's value for the kind."""

    model_config = _MODEL
    name: Ident
    kind: Literal["dram", "hbm", "sram", "flash"]
    size_mib: PosFloat
    bandwidth_gbps: PosFloat
    latency_ns: NonNegFloat
    energy_pj_per_byte: NonNegFloat

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            name = data.get("name")
            if "kind" not in data and isinstance(name, str):
                data["kind"] = name if name in REGION_KIND_PJ_PER_BYTE else "dram"
            kind = data.get("kind")
            if "energy_pj_per_byte" not in data and isinstance(kind, str) and kind in REGION_KIND_PJ_PER_BYTE:
                data["energy_pj_per_byte"] = REGION_KIND_PJ_PER_BYTE[kind]
        return data

    @model_validator(mode="after")
    def _bounded(self) -> "Region":
        _check_bounds(self, f"regions[{self.name!r}].", {
            "size_mib": (L.REGION_MIB,),
            "bandwidth_gbps": (L.MIN_BANDWIDTH_GBPS, L.MAX_BANDWIDTH_GBPS),
            "latency_ns": (L.LATENCY_NS,), "energy_pj_per_byte": (L.ENERGY_PJ,)})
        return self

    @property
    def size_bytes(self) -> int:
        return int(self.size_mib * 1024 * 1024)


class Placement(BaseModel):
    """Which region holds each tensor class (as Vela's memory modes do)."""

    model_config = _MODEL
    weights: str = "dram"
    activations: str = "dram"
    scratch: str = "dram"


# A simple CPU cost model, stated as such: cycles per element (per MAC for "conv") by op class,
# roughly a Cortex-M-class core running optimised int8 kernels. Not calibrated on hardware.
HOST_OP_CLASSES: Mapping[str, float] = {
    "conv": 1.0,      # conv, depthwise, fully connected, matmul: per multiply-accumulate
    "eltwise": 4.0,   # add, mul, sub, min, max: per output element
    "lut": 3.0,       # table-driven activations: per element
    "pool": 2.0,      # per element of each pooling window
    "reduce": 2.0,    # mean / sum / max: per input element
    "softmax": 30.0,  # per element (exp, sum, divide in fixed point)
    "copy": 1.0,      # reshape, transpose, concat, pad: per element moved
    "other": 10.0,    # anything else: per output element
}


class HostConfig(BaseModel):
    model_config = _MODEL
    cpu_mhz: PosFloat = 1000.0
    # energy per host CPU cycle: an order-of-magnitude figure for a small in-order application
    # core (about 0.1 W at 1 GHz), not calibrated on hardware
    pj_per_cycle: NonNegFloat = 100.0
    cycles_per_element: dict[str, NonNegFloat] = Field(default_factory=lambda: dict(HOST_OP_CLASSES))

    @field_validator("cycles_per_element", mode="before")
    @classmethod
    def _merge_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(HOST_OP_CLASSES))
        if unknown:
            raise ArchError(f"arch config: host.cycles_per_element: unknown op class {unknown[0]!r} "
                            f"(known: {', '.join(HOST_OP_CLASSES)})")
        return {**HOST_OP_CLASSES, **value}

    @model_validator(mode="after")
    def _bounded(self) -> "HostConfig":
        _check_bounds(self, "host.", {"cpu_mhz": (L.MIN_CLOCK_MHZ, L.CLOCK_MHZ), "pj_per_cycle": (L.ENERGY_PJ,)})
        for op, cycles in self.cycles_per_element.items():
            L.HOST_CYCLES.check(cycles, f"arch config: host.cycles_per_element.{op}", ArchError)
        return self

    def cycles(self, op_class: str, elements: int) -> float:
        return elements * self.cycles_per_element.get(op_class, self.cycles_per_element["other"])


class TechConfig(BaseModel):
    """Process node for the energy/area table plus optional overrides of its derived values."""

    model_config = _MODEL
    node: str = DEFAULT_NODE
    pj_per_mac: NonNegFloat | None = None
    pj_per_vpu_op: NonNegFloat | None = None
    pj_per_vpu_mul: NonNegFloat | None = None
    pj_per_rf_access: NonNegFloat | None = None
    sram_pj_per_byte: NonNegFloat | None = None
    um2_per_mac: NonNegFloat | None = None
    um2_per_vpu_lane: NonNegFloat | None = None
    mm2_per_sram_kib: NonNegFloat | None = None
    static_mw: NonNegFloat = 0.0

    @model_validator(mode="after")
    def _bounded(self) -> "TechConfig":
        energy = ("pj_per_mac", "pj_per_vpu_op", "pj_per_vpu_mul", "pj_per_rf_access", "sram_pj_per_byte")
        _check_bounds(self, "tech.", {**{k: (L.ENERGY_PJ,) for k in energy},
                                      "um2_per_mac": (L.AREA_UM2,), "um2_per_vpu_lane": (L.AREA_UM2,),
                                      "static_mw": (L.STATIC_MW,)})
        if self.mm2_per_sram_kib is not None:
            L.AREA_UM2.check(self.mm2_per_sram_kib * 1e6, "arch config: tech.mm2_per_sram_kib (in um^2)", ArchError)
        return self


class Arch(BaseModel):
    model_config = _MODEL
    name: Annotated[str, Field(min_length=1, max_length=64)]
    clock_mhz: PosFloat
    mxu: MxuConfig
    vpu: VpuConfig
    sram: SramConfig
    dma: DmaConfig = Field(default_factory=DmaConfig)
    regions: tuple[Region, ...] = Field(min_length=1)
    placement: Placement = Field(default_factory=Placement)
    host: HostConfig = Field(default_factory=HostConfig)
    tech: TechConfig = Field(default_factory=TechConfig)

    @field_validator("regions", mode="before")
    @classmethod
    def _regions_as_tuple(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            L.REGIONS.check(len(value), "arch config: regions", ArchError)
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _check_consistency(self, info: ValidationInfo) -> "Arch":
        _check_bounds(self, "", {"clock_mhz": (L.MIN_CLOCK_MHZ, L.CLOCK_MHZ)})
        if info.context == _KEYS_ONLY:
            return self
        names = [r.name for r in self.regions]
        for n in names:
            if names.count(n) > 1:
                raise ArchError(f"arch config: regions: region name {n!r} appears twice")
        for cls_name in ("weights", "activations", "scratch"):
            target = getattr(self.placement, cls_name)
            if target not in names:
                raise ArchError(f"arch config: placement.{cls_name}: names region {target!r}, "
                                f"which is not defined (regions: {', '.join(names)})")
        tech_node(self.tech.node)
        self._check_sram_holds_one_tile()
        return self

    def _check_sram_holds_one_tile(self) -> None:
        r, c, s = self.mxu.rows, self.mxu.cols, self.sram
        needs = {"abuf_kib": (r * c, "int8 activation"), "wbuf_kib": (r * c, "int8 weight"),
                 "acc_kib": (r * c * 4, "int32 accumulator")}
        for key, (need, what) in needs.items():
            have = getattr(s, key) * 1024
            if have < need:
                raise ArchError(f"arch config: sram.{key}: {have // 1024} KiB cannot hold one "
                                f"{r}x{c} {what} MXU tile (needs {-(-need // 1024)} KiB)")
            if have % s.banks:
                raise ArchError(f"arch config: sram.{key}: {have} bytes do not split evenly "
                                f"into {s.banks} banks")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Arch":
        if not isinstance(data, Mapping):
            raise ArchError("arch config: top level must be a table")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ArchError(one_line(exc, data, Arch)) from None

    @classmethod
    def from_toml_text(cls, text: str) -> "Arch":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ArchError(f"arch config: invalid TOML: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_toml(self) -> str:
        return toml_emit.dumps(self.to_dict())

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of `to_dict` (computed once: an Arch is frozen; the
        schedule's memo keys and the binary's header ask for it often)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "Arch":
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("fingerprint", None)      # (an update changes it)
        return copy

    def replace(self, overrides: Mapping[str, Any] | None = None, /, **dotted: Any) -> "Arch":
        """A new validated Arch with dotted keys replaced: {"mxu.rows": 32}; regions are
        addressed by name: {"regions.dram.bandwidth_gbps": 16.0}."""
        data = self.model_dump(mode="json")
        for key, value in {**(overrides or {}), **dotted}.items():
            _set_dotted(data, key, value)
        return Arch.from_dict(data)

    def check_value(self, key: str, value: Any) -> None:
        """ArchError unless `value` can be the dotted `key`'s on its own: its type, sign,
        finiteness and named limit (npukit.limits), whatever the other keys are. The checks
        across keys (SRAM holding one MXU tile, placement naming a region) need a whole config."""
        data = self.model_dump(mode="json")
        _set_dotted(data, key, value)
        try:
            Arch.model_validate(data, context=_KEYS_ONLY)
        except ValidationError as exc:
            raise ArchError(one_line(exc, data, Arch)) from None

    # ---- convenience ----------------------------------------------------------------------
    @property
    def macs_per_cycle(self) -> int:
        return self.mxu.rows * self.mxu.cols

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def abuf_bytes(self) -> int:
        return self.sram.abuf_kib * 1024

    @property
    def wbuf_bytes(self) -> int:
        return self.sram.wbuf_kib * 1024

    @property
    def acc_bytes(self) -> int:
        return self.sram.acc_kib * 1024

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise ArchError(f"arch {self.name!r} has no region {name!r} "
                        f"(regions: {', '.join(r.name for r in self.regions)})")

    def region_bytes_per_cycle(self, name: str) -> float:
        """Bytes per NPU clock cycle of a region: bandwidth_gbps * 1e9 / (clock_mhz * 1e6)."""
        return self.region(name).bandwidth_gbps * 1e9 / self.clock_hz

    def region_latency_cycles(self, name: str) -> float:
        return self.region(name).latency_ns * 1e-9 * self.clock_hz

    def placed(self, tensor_class: str) -> Region:
        """The region holding "weights", "activations" or "scratch"."""
        if tensor_class not in ("weights", "activations", "scratch"):
            raise ArchError(f"unknown tensor class {tensor_class!r} (weights, activations, scratch)")
        return self.region(getattr(self.placement, tensor_class))


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):  # regions, addressed by name
            match = [r for r in node if isinstance(r, dict) and r.get("name") == part]
            if not match or last:
                raise ArchError(f"arch replace: {where}: no region named {part!r}")
            node = match[0]
            continue
        if not isinstance(node, dict) or part not in node:
            known = [".".join([*parts[:i], k]) for k in node] if isinstance(node, dict) else []
            raise ArchError(f"arch replace: unknown key {where!r}{did_you_mean(where, known)}")
        if last:
            node[part] = value
        else:
            node = node[part]
