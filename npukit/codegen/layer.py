"""Emission of one NPU layer that is not part of a fusion group, by its operator."""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, Graph, Node, Op
from ..ir.shapes import REDUCTIONS
from ..kernels import kernels_vpu as kv
from ..quant.quantize import LUT_OPS
from .context import Ctx
from .conv import conv_summary, lower_conv
from .data import DATA_LOWERING
from .gru import lower_gru
from .lstm import lower_lstm
from .matmul import lower_matmul
from .norm import lower_layer_norm
from .resize import lower_resize
from .vector import (ELTWISE_KIND, eltwise_plan, lower_eltwise, lower_eltwise_broadcast, lower_lut, lower_mean,
                     lower_pool, lower_select)
from .softmax import lower_softmax
from ..kernels.kernels_relu16 import Relu16Params
from ..kernels.kernels_vpu16 import Lut16Params, Sigmoid16Params
from .vector16 import lower_lut16, lower_sigmoid16
from .wide import lower_magnitude, lower_requantize


def lower_layer(ctx: Ctx, g: Graph, node: Node, tiling) -> dict | None:
    """Emit one NPU layer that is not part of a fusion group; its note for people."""
    op = node.op
    if op in (Op.CONV2D, Op.FULLY_CONNECTED):
        lower_conv(ctx, g, node, tiling)
        return {"tiling": conv_summary(tiling)}
    if op is Op.MATMUL:
        lower_matmul(ctx, g, node, tiling)
        return {"tiling": f"rows {tiling.mt} x cols {tiling.nt} x depth {tiling.kt}"}
    if op in ELTWISE_KIND:
        plan = eltwise_plan(g, node)
        return lower_eltwise(ctx, g, node, plan) if plan else lower_eltwise_broadcast(ctx, g, node)
    if isinstance(node.params, Sigmoid16Params):
        return lower_sigmoid16(ctx, g, node)
    if isinstance(node.params, Lut16Params):
        return lower_lut16(ctx, g, node)
    if isinstance(node.params, Relu16Params):
        return lower_requantize(ctx, g, node)
    if op in LUT_OPS:
        return lower_lut(ctx, g, node)
    if op is Op.QUANTIZE and DType.I16 in (g.tensors[node.inputs[0]].dtype, g.tensors[node.outputs[0]].dtype):
        return lower_requantize(ctx, g, node)
    if op is Op.QUANTIZE:      # an int8 / uint8 -> int8 / uint8 rescale is a table of the 256 codes
        out = np.dtype(g.tensors[node.outputs[0]].dtype.np)
        codes = np.arange(-128, 128, dtype=np.int8)     # the table's index: each byte read as int8
        if g.tensors[node.inputs[0]].dtype is DType.U8:
            codes = codes.view(np.uint8)                # ... holding the uint8 value of that byte
        return lower_lut(ctx, g, node, kv.requantize(codes, node.params, out))
    if op is Op.SOFTMAX:
        return lower_softmax(ctx, g, node)
    if op is Op.LAYER_NORM:
        return lower_layer_norm(ctx, g, node)
    if op is Op.WHERE:
        return lower_select(ctx, g, node)
    if op is Op.RESIZE:
        return lower_resize(ctx, g, node)
    if op in (Op.MAX_POOL, Op.AVG_POOL):
        return lower_pool(ctx, g, node)
    if op in REDUCTIONS:
        return lower_mean(ctx, g, node)
    if op is Op.RESHAPE:
        return {}
    if op is Op.MAGNITUDE:
        return lower_magnitude(ctx, g, node)
    if op is Op.LSTM:
        return lower_lstm(ctx, g, node)
    if op is Op.GRU:
        return lower_gru(ctx, g, node)
    if op is Op.GELU:
        return lower_lut(ctx, g, node)
    DATA_LOWERING[op](ctx, g, node)
    return {}
