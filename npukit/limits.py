"""Resource limits: every bound npukit checks before it allocates, reads or loops, in one place.

A model, binary, config or input beyond one of these is refused with an npukit error that
names the limit (`Limit.check`), before any work. docs/robustness.md lists them for users.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    name: str        # how errors and docs name it
    value: int | float
    unit: str        # "bytes", "elements", ...
    lower: bool = False   # a floor (amount >= value) rather than a ceiling

    def check(self, amount: int | float, what: str, error: type[Exception]) -> None:
        """Raise `error` naming `what` when `amount` is beyond this limit (or NaN)."""
        if not (amount >= self.value if self.lower else amount <= self.value):
            raise error(limit_message(self, amount, what))


def limit_message(limit: Limit, amount: int | float, what: str) -> str:
    side = "below" if limit.lower else "beyond"
    return (f"{what} is {_fmt(amount)} {limit.unit}, {side} the limit {limit.name} = "
            f"{_fmt(limit.value)} {limit.unit}")


def _fmt(n: int | float) -> str:
    if isinstance(n, int):      # (a huge int has no decimal str: say its size)
        return f"{n:,}" if n.bit_length() <= 64 else f"about 2^{n.bit_length() - 1}"
    return f"{n:g}"


GIB = 1 << 30
MIB = 1 << 20

# Models
MODEL_BYTES = Limit("max_model_bytes", 2 * GIB, "bytes")              # file + external data
TENSOR_ELEMENTS = Limit("max_tensor_elements", 1 << 26, "elements")   # any one tensor (256 MiB in float32)
TENSOR_RANK = Limit("max_tensor_rank", 8, "dimensions")
GRAPH_NODES = Limit("max_graph_nodes", 100_000, "nodes")
HOST_LOOP_TRIPS = Limit("max_host_loop_trips", 1_000_000, "iterations")
HOST_SECONDS = Limit("max_host_seconds", 60, "seconds")               # one run of one host operator

# Compiled binaries (.npub)
BINARY_BYTES = Limit("max_binary_bytes", 2 * GIB, "bytes")
UNPACKED_BYTES = Limit("max_unpacked_bytes", 2 * GIB, "bytes")       # a section after decompression
META_DEPTH = Limit("max_meta_depth", 64, "levels")                   # JSON nesting in the binary
INSTRUCTIONS = Limit("max_instructions", 10_000_000, "instructions")
LAYERS = Limit("max_layers", 1_000_000, "layers")

# Architectures and sweeps
SRAM_KIB = Limit("max_sram_kib", 1 << 20, "KiB")                     # each on-chip buffer: 1 GiB
ARRAY_DIM = Limit("max_array_dim", 4096, "PEs")                      # MXU rows or columns
CLOCK_MHZ = Limit("max_clock_mhz", 100_000, "MHz")
SWEEP_POINTS = Limit("max_sweep_points", 1_000_000, "points")       # grid product, samples x models
CHECK_INPUTS = Limit("max_check_inputs", 1000, "inputs")            # functional-check inputs per point
POINT_SECONDS = Limit("point_seconds", 600, "seconds")              # default per-point time limit
POINT_MEMORY = Limit("point_memory_bytes", 8 * GIB, "bytes")        # default per-point memory limit

# Architecture keys beyond the three above (each also has its floor; see arch/config.py)
MIN_CLOCK_MHZ = Limit("min_clock_mhz", 1, "MHz", lower=True)          # NPU and host CPU clocks
VPU_LANES = Limit("max_vpu_lanes", 65536, "lanes")
PIPELINE_DEPTH = Limit("max_pipeline_depth", 1024, "stages")
SRAM_BANKS = Limit("max_sram_banks", 1024, "banks")
DMA_CHANNELS = Limit("max_dma_channels", 64, "channels")
DMA_SETUP_CYCLES = Limit("max_dma_setup_cycles", 1_000_000, "cycles")
MIN_DECODE_RATE = Limit("min_decode_bytes_per_cycle", 0.01, "bytes/cycle", lower=True)
MAX_DECODE_RATE = Limit("max_decode_bytes_per_cycle", 1 << 20, "bytes/cycle")
REGIONS = Limit("max_regions", 16, "regions")
REGION_MIB = Limit("max_region_mib", 1 << 24, "MiB")                 # each off-chip region: 16 TiB
MIN_BANDWIDTH_GBPS = Limit("min_bandwidth_gbps", 0.001, "GB/s", lower=True)
MAX_BANDWIDTH_GBPS = Limit("max_bandwidth_gbps", 100_000, "GB/s")
LATENCY_NS = Limit("max_latency_ns", 1_000_000, "ns")
ENERGY_PJ = Limit("max_energy_pj", 1_000_000, "pJ")                   # any one energy per action
AREA_UM2 = Limit("max_area_um2", 1e9, "um^2")                         # any one area per unit (1000 mm^2)
STATIC_MW = Limit("max_static_mw", 1_000_000, "mW")
HOST_CYCLES = Limit("max_host_cycles_per_element", 1_000_000, "cycles")
