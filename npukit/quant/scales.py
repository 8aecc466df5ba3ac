"""Calibration's choices kept for other input shapes of the same model.

A transformer compiled per token count has the same tensors (by name) at every count, and
a per-tensor scale does not depend on the shape: `Scales` holds what one compile chose
(each activation's calibrated range and the int16 widenings, in the order applied) so that
compiles at other shapes reuse it instead of calibrating again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..errors import InputError
from ..ir.graph import DType, Graph
from ..progress import stage
from .calibrate import Range


@dataclass(frozen=True)
class Scales:
    ranges: Mapping[str, Range]                 # activation -> calibrated float range
    widenings: tuple[frozenset[str], ...] = ()  # the tensor sets widened to int16, in order
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)  # weights GPTQ rounded (quant.gptq)

    def covering(self, g: Graph) -> dict[str, Range]:
        """The ranges of `g`'s activations; InputError naming one they do not hold (scales
        from another model)."""
        acts = [n for n, t in g.tensors.items() if not t.is_const]
        missing = [n for n in acts if n not in self.ranges and g.tensors[n].dtype is DType.F32]
        if missing:
            raise InputError(f"scales have no range for tensor {missing[0]!r}"
                             + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                             + ": they come from a compile of another model")
        return {n: self.ranges[n] for n in acts if n in self.ranges}

    def apply(self, g: Graph, equalise: bool = False, known: dict | None = None) -> Graph:
        """The float graph `g` optimised and quantised with these scales, through the same
        transformations in the same order as the compile that chose them. `known`: the
        caller's memo of quantised constants (quantize.quantize_graph)."""
        from ..opt.equalize import equalize
        from ..opt.pipeline import optimize
        from .gptq import with_weights
        from .groups import requantise_fixed_outputs
        from .lstm_states import isolate_lstm_states
        from .quantize import quantize_graph
        from .wide import widen_mxu_boundaries
        stage("optimise")
        g = optimize(g)
        if equalise:
            g = equalize(g)
        g = with_weights(g, {n: w for n, w in self.weights.items() if n in g.tensors})
        ranges = self.covering(g)
        g, copies = requantise_fixed_outputs(g, ranges)
        g, lstm_copies, _ = isolate_lstm_states(g)     # (its int16 state tensors are in the first widening)
        ranges.update({copy: ranges[name] for copy, name in (copies | lstm_copies).items()})
        wide: frozenset[str] = frozenset()
        for step in self.widenings:
            g, wide, copies = widen_mxu_boundaries(g, step)
            ranges.update({copy: ranges[name] for copy, name in copies.items()})
        stage("quantise")
        return quantize_graph(g, ranges, wide, known=known)
