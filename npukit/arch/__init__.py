"""Architecture config (schema, presets) and the technology table for energy and area."""
from npukit.arch.config import (
    Arch, DmaConfig, HostConfig, MxuConfig, Placement, Region, SramConfig, TechConfig, VpuConfig,
)
from npukit.arch.loader import list_presets, load_arch
from npukit.arch.tech import EnergyTable, area_mm2, energy_table

__all__ = [
    "Arch", "DmaConfig", "EnergyTable", "HostConfig", "MxuConfig", "Placement", "Region",
    "SramConfig", "TechConfig", "VpuConfig", "area_mm2", "energy_table", "list_presets",
    "load_arch",
]
