"""VPU-side int8 kernels, bit-exact to LiteRT's reference (BUILTIN_REF) kernels.

Each op has a prepare_* that turns real scales / zero points into frozen integer params the
way the TFLite kernel's Prepare does, and an integer kernel on numpy arrays (NHWC). The
implementations live in three modules; this one is the public surface.
"""
from npukit.kernels.kernels_vpu_act import (SoftmaxParams, SoftmaxTableParams, float_function_table,
                                            hard_swish_lut16, hard_swish_table, leaky_relu_table, logistic_table, lut,
                                            prepare_softmax, prepare_softmax_table, softmax, softmax_out,
                                            softmax_sum, tanh_table)
from npukit.kernels.kernels_vpu_eltwise import (AddParams, MulParams, PreluParams, RequantParams, add,
                                                dequantize, maximum, minimum, mul, pad_code, prelu, prepare_add,
                                                prepare_mul, prepare_prelu, prepare_requantize, quantize,
                                                quantize_saturated, requantize, sub)
from npukit.kernels.kernels_vpu_pool import (MeanParams, arg_max, avg_pool, max_pool, mean, pool_output_hw,
                                             prepare_mean, prepare_sum, reduce_extreme, reduce_sum,
                                             resize_bilinear, resize_band_rows, resize_nearest, Band, SumParams)

__all__ = [
    "AddParams", "MulParams", "PreluParams", "RequantParams", "MeanParams", "SoftmaxParams",
    "SoftmaxTableParams",
    "prepare_add", "add", "sub", "prepare_mul", "mul", "maximum", "minimum",
    "prepare_prelu", "prelu", "prepare_requantize", "requantize", "quantize", "quantize_saturated", "dequantize", "pad_code",
    "max_pool", "avg_pool", "pool_output_hw", "prepare_mean", "mean", "prepare_sum", "reduce_sum", "SumParams", "reduce_extreme", "arg_max",
    "resize_nearest", "resize_bilinear", "resize_band_rows", "Band",
    "lut", "logistic_table", "tanh_table", "hard_swish_table", "hard_swish_lut16", "leaky_relu_table",
    "float_function_table", "prepare_softmax", "prepare_softmax_table", "softmax",
    "softmax_sum", "softmax_out",
]
