"""ReLU forms of an int16 input (TFLite's 16x8 RELU / RELU6, reference_ops::ReluX): the input
is requantised into the output scale, MultiplyByQuantizedMultiplier(x - zp_in) + zp_out with
QuantizeMultiplier(s_in / s_out) divided in float32 (ReluPrepare divides the tensors' float
scales; QUANTIZE's Requantize divides doubles, one multiplier step apart at s_out / s_in =
2^1.25), then clamped to the quantised bounds
zp_out + round(bound / s_out) (the division in float32), intersected with int16. LiteRT runs
RELU and RELU6 on int16 (zero points 0); RELU_N1_TO_1 and RELU_0_TO_1 refuse int16 there and
take the same arithmetic here. The NPU runs it as the requantising 1x1 DWCONV of QUANTIZE
with the clamp as its activation bounds.

LEAKY_RELU of int16 (reference_ops::QuantizeLeakyRelu): x - zp >= 0 by the identity multiplier
s_in / s_out, else by |alpha| s_in / s_out (float32), negated for a negative alpha; that is
PRELU's arithmetic with a constant slope code of +-1 (MultiplyByQuantizedMultiplier rounds
half away from zero, so MBQM(-v) = -MBQM(v)), which the VPU's int16 ELEMENTWISE runs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.ir.graph import Clamp
from npukit.kernels import intmath
from npukit.kernels.kernels_mxu import activation_range
from npukit.kernels.kernels_vpu_eltwise import PreluParams, check_scale


@dataclass(frozen=True)
class Relu16Params:
    input_zp: int
    output_zp: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


def prepare_relu16(in_s: float, in_zp: int, out_s: float, out_zp: int, clamp: Clamp) -> Relu16Params:
    """ReluPrepare (the multiplier) and QuantizedReluX (the bounds) for int16."""
    check_scale(in_s, "input")
    check_scale(out_s, "output")
    m, sh = intmath.quantize_multiplier(float(np.float32(in_s) / np.float32(out_s)))
    lo, hi = activation_range(clamp, out_s, out_zp, np.int16)
    return Relu16Params(int(in_zp), int(out_zp), m, sh, lo, hi)


def relu16(x: np.ndarray, p: Relu16Params) -> np.ndarray:
    """reference_ops::ReluX on int16 codes."""
    v = intmath.multiply_by_quantized_multiplier(np.asarray(x, np.int64) - p.input_zp, p.multiplier, p.shift)
    return np.clip(v + p.output_zp, p.act_min, p.act_max).astype(np.int16)


def leaky_relu16_as_prelu(in_s: float, in_zp: int, out_s: float, out_zp: int, alpha: float,
                          channels: int) -> tuple[np.ndarray, PreluParams]:
    """LeakyReluPrepare's two multipliers as PRELU parameters, and the int16 slope codes (one
    per channel, all +1, or -1 for a negative alpha)."""
    f = np.float32
    m_id, sh_id = intmath.quantize_multiplier(float(f(in_s) / f(out_s)))
    m_a, sh_a = intmath.quantize_multiplier(float(f(in_s) * f(abs(alpha)) / f(out_s)))
    slope = np.full(channels, -1 if alpha < 0 else 1, np.int16)
    return slope, PreluParams(-int(in_zp), 0, int(out_zp), m_id, sh_id, m_a, sh_a)
