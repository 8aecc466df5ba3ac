"""Resource limits: every bound npukit checks before it allocates, reads or loops, in one place.

A model, binary, config or input beyond one of these is refused with an npukit error that
names the limit (`limit_error`), before any work. docs/robustness.md lists them for users.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    name: str        # how errors and docs name it
    value: int
    unit: str        # "bytes", "elements", ...

    def check(self, amount: int | float, what: str, error: type[Exception]) -> None:
        """Raise `error` naming `what` when `amount` exceeds this limit."""
        if not amount <= self.value:
            raise error(limit_message(self, amount, what))


def limit_message(limit: Limit, amount: int | float, what: str) -> str:
    return (f"{what} is {_fmt(amount)} {limit.unit}, beyond the limit {limit.name} = "
            f"{_fmt(limit.value)} {limit.unit}")


def _fmt(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:g}"


GIB = 1 << 30
MIB = 1 << 20

# Models
MODEL_BYTES = Limit("max_model_bytes", 2 * GIB, "bytes")              # file + external data
TENSOR_ELEMENTS = Limit("max_tensor_elements", 1 << 28, "elements")   # any one tensor
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
SWEEP_POINTS = Limit("max_sweep_points", 1_000_000, "points")
POINT_SECONDS = Limit("point_seconds", 600, "seconds")              # default per-point time limit
POINT_MEMORY = Limit("point_memory_bytes", 8 * GIB, "bytes")        # default per-point memory limit
