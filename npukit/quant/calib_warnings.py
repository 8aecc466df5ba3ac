"""Calibration that will fail, found at compile time: each finding is a CalibrationWarning
naming the tensor.

- a sigmoid, tanh or softmax whose calibrated input never reaches the range where its output
  changes (a sigmoid input never above 0 caps the int8 output at 0.5: int8 ranges hold 0, so
  the input saturates there, as a wake-word head calibrated only on negatives does);
- a tensor whose calibrated range is zero or not finite (constant on every sample);
- an activation whose range a few outlier channels dominate: one per-tensor scale then leaves
  the other channels few int8 codes;
- a reciprocal (a Div by a computed value) whose calibrated input holds 0, where 1/x has its pole.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..ir.graph import Graph, Op
from .calibrate import Observer, Range
from .groups import fixed_outputs


class CalibrationWarning(UserWarning):
    pass


OUTLIER_RATIO = 20.0        # a channel's max |x| over the median channel's: an outlier above this
OUTLIER_SHARE = 0.125       # "a few": at most this share of the channels are outliers
MIN_CHANNELS = 8            # fewer channels: no median to speak of
MIN_CODES = 2.0             # an output spanning fewer int8 codes than this is "nearly constant"
SOFTMAX_MIN_SPREAD = 0.1    # logits within this (x beta) of each other: a nearly uniform softmax
NAMED = 5                   # findings named per kind; the rest are counted


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-np.clip(x, -80, 80))))


def _squashing(g: Graph, ranges: dict[str, Range]) -> list[str]:
    out = []
    for node in g.nodes:
        if node.op not in (Op.SIGMOID, Op.TANH, Op.SOFTMAX) or node.inputs[0] not in ranges:
            continue
        x = node.inputs[0]
        r = ranges[x]
        if not (np.isfinite(r.lo) and np.isfinite(r.hi)):
            continue
        where = f"{node.op.value} '{node.name}': its input '{x}' is calibrated to [{r.lo:.3g}, {r.hi:.3g}]"
        if node.op is Op.SOFTMAX:
            if (r.hi - r.lo) * node.attrs.beta < SOFTMAX_MIN_SPREAD:
                out.append(f"{where}: the output is nearly uniform on every calibration sample")
            continue
        if node.op is Op.SIGMOID:
            codes = (_sigmoid(r.hi) - _sigmoid(r.lo)) * 256
        else:
            codes = (np.tanh(r.hi) - np.tanh(r.lo)) * 128
        if codes < MIN_CODES:
            out.append(f"{where}: the output spans {codes:.2g} int8 codes, nearly constant; the calibration "
                       f"data never reaches the range where {node.op.value} changes")
        elif node.op is Op.SIGMOID and r.hi <= 0:
            out.append(f"{where}: never above 0, so int8 caps the output at 0.5; calibrate on samples "
                       "that reach the positive side (e.g. the positive class too)")
    return out


def _poles(g: Graph, ranges: dict[str, Range]) -> list[str]:
    return [f"reciprocal '{node.name}': its input '{node.inputs[0]}' is calibrated to [{r.lo:.3g}, {r.hi:.3g}], "
            "which holds 0: 1/x is unbounded there, so its int8 range leaves the other values few codes"
            for node in g.nodes if node.op is Op.UNARY and node.attrs.fn == "reciprocal"
            and (r := ranges.get(node.inputs[0])) is not None and r.lo <= 0 <= r.hi]


def _degenerate(observers: dict[str, Observer], ranges: dict[str, Range]) -> list[str]:
    return [f"tensor '{name}' has a degenerate calibrated range [{r.lo:.3g}, {r.hi:.3g}]: "
            f"{'constant' if r.lo == r.hi else 'no finite values'} on every calibration sample"
            for name, r in ranges.items() if name in observers
            and (r.lo == r.hi or not (np.isfinite(r.lo) and np.isfinite(r.hi)))]


def _outliers(g: Graph, observers: dict[str, Observer]) -> list[str]:
    fixed = fixed_outputs(g)
    out = []
    for name, obs in observers.items():
        amax = obs.channel_amax
        if name in fixed or amax is None or amax.size < MIN_CHANNELS:
            continue
        median = float(np.median(amax))
        if not median > 0:
            continue
        ratio = amax / median
        k = int(np.sum(ratio > OUTLIER_RATIO))
        if 0 < k <= OUTLIER_SHARE * amax.size:
            out.append(f"activation '{name}': {k} of {amax.size} channels exceed {OUTLIER_RATIO:g}x the median "
                       f"channel's max |x| (the largest {float(ratio.max()):.0f}x), so one per-tensor scale leaves "
                       "the other channels few int8 codes (try --option equalize=auto)")
    return out


def calibration_findings(g: Graph, observers: dict[str, Observer], ranges: dict[str, Range]) -> list[str]:
    """Every finding, at most NAMED named per kind (then a count of the rest)."""
    out = []
    for kind, found in (("squashing", _squashing(g, ranges)), ("degenerate", _degenerate(observers, ranges)),
                        ("outlier", _outliers(g, observers)), ("pole", _poles(g, ranges))):
        out += found[:NAMED]
        if len(found) > NAMED:
            out.append(f"{len(found) - NAMED} more tensor(s) with the same kind of finding ({kind})")
    return out


def warn_calibration(g: Graph, observers: dict[str, Observer], ranges: dict[str, Range]) -> None:
    for message in calibration_findings(g, observers, ranges):
        warnings.warn(message, CalibrationWarning, stacklevel=4)
