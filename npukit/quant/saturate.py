"""Calibrated ranges clipped to what their readers can tell apart (option flat_clip=auto; off by
default, docs/numerics.md has the corpus measurement): an activation that only
functions constant beyond a bound read (hard-swish is 0 below -3; a clamp, relu or relu6 is
constant outside its bounds) need not spend int8 codes beyond that bound. Exact: every value
clipped there gives the readers the output the bound gives, in any precision. A batch-norm
output in [-70, 72] read only by a hard-swish keeps [-3, 72], about twice the codes on the
side the hard-swish passes on."""
from __future__ import annotations

import math

from ..ir.graph import Clamp, Graph, Node, Op
from .calibrate import Range


def flat_beyond(node: Node) -> Range | None:
    """The input interval outside which `node`'s output is constant (None: no such bound)."""
    if node.op is Op.HARD_SWISH:
        return Range(-3.0, math.inf)
    if node.op is Op.CLAMP and isinstance(a := node.attrs, Clamp):
        return Range(-math.inf if a.lo is None else a.lo, math.inf if a.hi is None else a.hi)
    return None


def clip_to_readers(g: Graph, ranges: dict[str, Range]) -> dict[str, Range]:
    """`ranges` with each activation that is no graph output and whose every reader is
    constant beyond a bound (`flat_beyond`) clipped to the widest of those bounds."""
    bounds: dict[str, list[Range | None]] = {}
    for node in g.nodes:
        for i, t in enumerate(node.inputs):
            bounds.setdefault(t, []).append(flat_beyond(node) if i == 0 else None)
    out = dict(ranges)
    for name, r in ranges.items():
        b = bounds.get(name)
        if name in g.outputs or not b or any(x is None for x in b):
            continue
        lo, hi = max(r.lo, min(x.lo for x in b if x)), min(r.hi, max(x.hi for x in b if x))
        if lo < hi:
            out[name] = Range(lo, hi)
    return out
