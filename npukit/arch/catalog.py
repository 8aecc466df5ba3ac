"""The shipped presets (npukit/arch/presets/NAME.toml): their names, their text, and one
summary line each read straight from the TOML, without building the schema (pydantic), so
that `npukit archs` starts fast. Loading a preset (`load_arch`) validates it."""
from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any, Mapping

from npukit.errors import ArchError

_PRESETS = resources.files("npukit.arch") / "presets"


def list_presets() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in _PRESETS.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    if name not in list_presets():
        raise ArchError(f"unknown arch preset {name!r} (presets: {', '.join(list_presets())})")
    return (_PRESETS / f"{name}.toml").read_text(encoding="utf-8")


def summary_line(doc: Mapping[str, Any]) -> str:
    """Name, MXU, clock, VPU, SRAM and memory regions of a preset's TOML (every key it reads
    is one the shipped presets set: tests/arch checks each line against the validated Arch)."""
    mxu, vpu, sram = doc["mxu"], doc["vpu"], doc["sram"]
    regions = ", ".join(f"{r['name']} {r['bandwidth_gbps']:g} GB/s" for r in doc["regions"])
    return (f"{doc['name']:9s} {mxu['rows']}x{mxu['cols']} MXU ({mxu['rows'] * mxu['cols']} MACs) @ {doc['clock_mhz']:g} MHz, "
            f"VPU {vpu['lanes']} lanes, ABUF/WBUF/ACC {sram['abuf_kib']}/{sram['wbuf_kib']}/{sram['acc_kib']} KiB, "
            f"{regions}")


def summary_lines() -> list[str]:
    """`npukit archs`: one line per preset, in name order."""
    return [summary_line(tomllib.loads(preset_text(name))) for name in list_presets()]
