"""What one schedule remembers while it searches, owned by that compile.

Networks repeat layer shapes, and the fusion search asks about the same layer in several
arenas: answers are kept here under keys holding everything they depend on (shapes, arch
fingerprint, options, bandwidths, placements). The scheduler makes one `Memo` per schedule
and passes it down; nothing is remembered from one compile to the next.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Memo:
    tilings: dict = field(default_factory=dict)   # search_conv / search_fused key -> cheapest tilings
    problems: dict = field(default_factory=dict)  # (conv layer, fit) -> its tiled problem (codegen.conv)
    chosen: dict = field(default_factory=dict)    # replay.fastest key -> index of the timed winner
    units: dict = field(default_factory=dict)     # scheduler: a unit's recorded emission, by its inputs
    layouts: dict = field(default_factory=dict)   # scheduler: the same by its tensors' layout (moved to their addresses)
    windows: dict = field(default_factory=dict)   # scheduler: (cycles, energy) of a window of units
    arenas: dict = field(default_factory=dict)    # scheduler: the arena of a set of fused layers
    charges: dict = field(default_factory=dict)   # the event model's instruction charges (one arch)

    def get(self, table: dict, key, make):
        """`table[key]`, made by `make()` on first use."""
        if key not in table:
            table[key] = make()
        return table[key]
