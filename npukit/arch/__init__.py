"""Architecture config (schema, presets) and the technology table for energy and area.

The names are imported on first use: `npukit.arch.catalog` (the presets' names and summary
lines) loads without the schema (pydantic), for the command line's start."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

_LAZY = {**dict.fromkeys(("Arch", "DmaConfig", "HostConfig", "MxuConfig", "Placement", "Region", "SramConfig",
                          "TechConfig", "VpuConfig"), "config"),
         "list_presets": "catalog", "load_arch": "loader",
         **dict.fromkeys(("EnergyTable", "area_mm2", "energy_table"), "tech")}
__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from npukit.arch.catalog import list_presets  # noqa: F401
    from npukit.arch.config import (  # noqa: F401
        Arch, DmaConfig, HostConfig, MxuConfig, Placement, Region, SramConfig, TechConfig, VpuConfig,
    )
    from npukit.arch.loader import load_arch  # noqa: F401
    from npukit.arch.tech import EnergyTable, area_mm2, energy_table  # noqa: F401


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
