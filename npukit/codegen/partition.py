"""Which layers the NPU runs (and why the host runs the others), and what each layer must
cost whatever its tiling: MACs, vector work, the off-chip bytes it cannot avoid."""
from __future__ import annotations

import math
from collections.abc import Set as AbstractSet

from ..arch import Arch
from ..ir.graph import DType, Graph, Node, Op
from ..ir.shapes import REDUCTIONS
from ..isa import instructions as I
from ..quant.quantize import LUT_OPS
from ..cost import costs
from ..cost.timing import (HOST_CLASS, GRU_CELL_OPS_PER_CELL, LUT16_OPS_PER_ELEMENT, MAGNITUDE_OPS_PER_ELEMENT,
                           SIGMOID16_OPS_PER_ELEMENT, SOFTMAX_OPS_PER_ELEMENT, layer_norm_ops, lstm_cell_ops, npu_clock)
from ..kernels.kernels_vpu16 import Lut16Params, Sigmoid16Params
from .context import CompileOptions
from .conv import conv_macs, conv_support
from .data import DATA_LOWERING, gather_support
from .gru import PARAM_BYTES as GRU_PARAM_BYTES, gru_macs, gru_support, n_gates as gru_gates
from .gru import cells_per_block as gru_cells
from .lstm import cell_layout as lstm_layout, cells_per_block as lstm_cells, lstm_macs, lstm_support, variant as lstm_variant
from .matmul import TRANSFORMER_NPU_OPS, matmul_macs, matmul_support
from .norm import layer_norm_support
from .resize import resize_fits
from .vector import ELTWISE_KIND, broadcast_supported, eltwise_plan, mean_layout, reduction_fits
from .softmax import softmax_fits
from .vector16 import VPU16_OPS
from .wide import int16_support


def npu_support(g: Graph, node: Node, work_abuf: int = 1 << 62, arch=None,
                options: CompileOptions | None = None) -> str:
    """'' if the NPU runs `node`, else the reason it runs on the host (`work_abuf`: the
    ABUF bytes left for working tiles; `arch`, when given, bounds an LSTM's or GRU's WBUF and ACC
    and, unless options.recurrent_host is "never", puts one the NPU fits where it is estimated
    cheaper, see recurrent_estimates)."""
    op = node.op
    if op is Op.HOST_TFLITE:        # no NPU lowering by construction: the frontend's reason
        return node.attrs.reason
    if op is Op.HOST_FLOAT:
        return node.attrs.reason or f"no NPU kernel for ONNX {node.attrs.op_type}"
    rank = len(g.tensors[node.outputs[0]].shape)
    if op is Op.GATHER:
        return gather_support(g, node)
    if op is Op.LAYER_NORM:
        return layer_norm_support(g, node, work_abuf)
    if op in (Op.LSTM, Op.GRU):
        reason = (lstm_support if op is Op.LSTM else gru_support)(g, node, work_abuf, arch)
        if reason or arch is None or (options or CompileOptions()).recurrent_host == "never":
            return reason
        npu, host = recurrent_estimates(g, node, arch, work_abuf)
        return f"host estimate {host} cycles < NPU estimate {npu} cycles" if host < npu else ""
    if op not in TRANSFORMER_NPU_OPS and any(g.tensors[t].dtype is DType.I16 and not g.tensors[t].is_const
                                              for t in (*node.inputs, *node.outputs)):
        reason = int16_support(g, node)
        if reason or op not in DATA_LOWERING and op not in VPU16_OPS:
            return reason
    if op in TRANSFORMER_NPU_OPS:
        return matmul_support(g, node)
    if op in (Op.CONV2D, Op.FULLY_CONNECTED) and arch is not None:
        o = options or CompileOptions()
        return conv_support(g, node, work_abuf, arch, 2 if o.double_buffer else 1, onchip_bytes(arch, o))
    if op in (Op.CONV2D, Op.FULLY_CONNECTED, Op.MAX_POOL, Op.AVG_POOL, Op.RESHAPE) or op in LUT_OPS:
        return ""
    if op is Op.MAGNITUDE:       # reached only without int16 tensors (those are handled above)
        return "magnitude needs an int16 input"
    if op in ELTWISE_KIND:
        ok = eltwise_plan(g, node) or broadcast_supported(g, node)
        return "" if ok else "broadcast pattern not supported by the VPU"
    if op is Op.WHERE:
        return "" if broadcast_supported(g, node) else f"{rank}-D tensor exceeds the 4-D DMA"
    if op is Op.SOFTMAX:
        axis = node.attrs.axis % rank
        if axis != rank - 1:
            return "softmax over an axis other than the last"
        return "" if softmax_fits(g, node, work_abuf) else "not even a chunk of a softmax row fits ABUF"
    if op is Op.RESIZE:
        return "" if rank == 4 and resize_fits(g, node, work_abuf) else "resize plane larger than ABUF"
    if op is Op.QUANTIZE:
        ok = node.params is not None and g.tensors[node.inputs[0]].dtype in (DType.I8, DType.U8)
        return "" if ok else "quantize from a type other than int8 or uint8"
    if op in REDUCTIONS:
        if not mean_layout(g, node):
            return "reduction over non-adjacent axes"
        return "" if reduction_fits(g, node, work_abuf) else "reduced elements larger than ABUF"
    if op in DATA_LOWERING:
        return ""                  # any rank: a loop of 4-D DMAs (codegen/data.copy_block)
    return f"no NPU lowering for {op.value}"


def recurrent_estimates(g: Graph, node: Node, arch: Arch, work_abuf: int) -> tuple[int, int]:
    """(NPU, host) cycles of an LSTM / GRU the NPU fits, by closed forms. NPU: the weight bytes
    read from their region (placed as codegen/recurrent places them: all resident, read once;
    alternating, both matrices once per chunk of steps; streamed, the input matrix per chunk and
    the recurrent one every step; parameter blocks not resident, every step) over its bandwidth,
    plus the MXU's GEMMs (a chunk's input part, each step's recurrent part) and the cells' VPU
    work. Host: the CPU's charge by MACs (cost/timing.host_cycles)."""
    lstm = node.op is Op.LSTM
    b, steps, i = g.tensors[node.inputs[0]].shape
    c = g.tensors[node.outputs[0]].shape[-1]
    n_gates, per_cell, o = lstm_layout(g, node) if lstm else \
        (gru_gates(node), GRU_PARAM_BYTES // 3 * gru_gates(node), c)
    c = g.tensors[node.inputs[5]].shape[1] if lstm else c           # cells (outputs: o, the projection's)
    gates = n_gates * c
    wbuf, acc = arch.wbuf_bytes, arch.acc_bytes
    cb = lstm_cells(b, max(i, o), c, wbuf, acc, n_gates, per_cell) if lstm else gru_cells(i, c, wbuf, per_cell)
    resident = I.align(per_cell * c) + 64 + 4 * max(i, c) <= wbuf       # the parameter block
    room = wbuf - 64 - (I.align(per_cell * c) if resident else 2 * I.align(per_cell * cb))
    w_in, w_rec = gates * i, gates * o + (o * c if lstm and node.attrs.projection else 0)
    acc_top = I.align(4 * n_gates * b * cb) if lstm else I.align(8 * b * c) + I.align(4 * b * c)
    state = I.align(2 * b * c) + 2 * I.align(b * c) if lstm else \
        (2 + (not node.attrs.rnn and not node.attrs.linear_before_reset)) * I.align(b * c)   # cell, hidden buffers
    chunk = max(1, min(steps, (acc - acc_top - 64) // (4 * b * gates), (work_abuf - state - 64) // max(b * i, 1)))
    chunks = -(-steps // chunk)
    if I.align(w_in) + I.align(w_rec) <= room:
        traffic = w_in + w_rec
    elif max(w_in, w_rec) <= room:
        traffic = chunks * (w_in + w_rec)
    else:
        traffic = chunks * w_in + steps * w_rec
    traffic += 0 if resident else steps * per_cell * c
    m = arch.mxu
    df = costs.OS if m.dataflow == "os" else costs.WS
    mxu = chunks * costs.mxu_gemm_cycles(b * chunk, gates, i, m.rows, m.cols, df, m.fold_overlap) + \
        steps * costs.mxu_gemm_cycles(b, gates, c, m.rows, m.cols, df, m.fold_overlap)
    npu = traffic / arch.region_bytes_per_cycle(arch.placement.weights) + mxu + \
        costs.vpu_cycles(vpu_ops(g, node), arch.vpu.lanes, arch.vpu.pipeline_depth)
    host = npu_clock(arch, arch.host.cycles(HOST_CLASS[node.op.value], layer_macs(g, node)))
    return int(math.ceil(npu)), host


def onchip_bytes(arch: Arch, options: CompileOptions | None = None) -> int:
    """The top of ABUF kept for resident activations (CompileOptions.onchip_fraction)."""
    return int(arch.abuf_bytes * (options or CompileOptions()).onchip_fraction) // I.ALIGN * I.ALIGN


def layer_macs(g: Graph, node: Node) -> int:
    """int8 MACs the engine performs: a 16x8 layer's int16 input is two byte passes, so twice
    its products (the timing model's count, and the roofline's compute term)."""
    if node.op is Op.LSTM:
        return lstm_macs(g, node)
    if node.op is Op.GRU:
        return gru_macs(g, node)
    if node.op not in (Op.CONV2D, Op.FULLY_CONNECTED):
        return matmul_macs(g, node)
    return conv_macs(g, node) * (2 if g.tensors[node.inputs[0]].dtype is DType.I16 else 1)


def vpu_ops(g: Graph, node: Node) -> int:
    """Element operations the layer needs on the vector unit (the roofline's VPU term)."""
    out = g.tensors[node.outputs[0]].size
    if node.op in (Op.MAX_POOL, Op.AVG_POOL):
        return out * node.attrs.kernel[0] * node.attrs.kernel[1]
    if node.op in REDUCTIONS:
        return g.tensors[node.inputs[0]].size
    if node.op in (Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.CONCAT, Op.PAD, Op.GATHER):
        return 0                                   # pure data movement (DMA)
    if node.op is Op.SOFTMAX:
        return SOFTMAX_OPS_PER_ELEMENT * out
    if node.op is Op.MAGNITUDE:
        return MAGNITUDE_OPS_PER_ELEMENT * out
    if node.op is Op.LAYER_NORM:
        n = g.tensors[node.inputs[0]].shape[-1]
        return layer_norm_ops(out // n, n)
    if node.op is Op.LSTM:                         # one LSTM_CELL per step and batch row
        b, t, _ = g.tensors[node.inputs[0]].shape
        return lstm_cell_ops(b * t, g.tensors[node.inputs[5]].shape[1], lstm_variant(g, node))
    if node.op is Op.GRU and node.attrs.rnn:       # the RNN's GRU_CELL per output
        return GRU_CELL_OPS_PER_CELL[2 if node.attrs.rnn == "tanh" else 3] * out
    if node.op is Op.GRU:                          # GRU_CELL mode 1 per output, mode 0 too without lbr
        return (GRU_CELL_OPS_PER_CELL[1] + (0 if node.attrs.linear_before_reset else GRU_CELL_OPS_PER_CELL[0])) * out
    if isinstance(node.params, Sigmoid16Params):
        return SIGMOID16_OPS_PER_ELEMENT * out
    if isinstance(node.params, Lut16Params):
        return LUT16_OPS_PER_ELEMENT * out
    if node.op in (Op.ADD, Op.SUB, Op.MUL):        # and the widening of each int8 operand of an int16 one
        return out + sum(g.tensors[t].size for t in node.inputs if not g.tensors[t].is_const and
                         g.tensors[t].dtype.itemsize < g.tensors[node.outputs[0]].dtype.itemsize)
    if node.op is Op.RESIZE and node.attrs.mode == "bilinear":
        return 4 * out
    return out                                     # requantise / element-wise / table


def min_bytes(g: Graph, node: Node, arch: Arch, counted: set[str], interior: AbstractSet[str] = frozenset()
               ) -> tuple[int, dict[str, int]]:
    """What must cross off-chip whatever the schedule, in total and per region: weights, the
    graph inputs and outputs the layer touches, and the spills the SRAM size forces
    (activations larger than all of ABUF are written out by their producer and read back by
    each consumer, unless they are the inside of a fused pair, which is never stored)."""
    if node.op is Op.RESHAPE:
        return 0, {}                               # an alias: nothing moves
    consts = [n for n in node.inputs if g.tensors[n].is_const and n not in counted]
    counted.update(consts)               # a weight shared by several layers crosses once
    weights = sum(g.tensors[n].nbytes for n in consts)
    if node.op is Op.GATHER and consts:  # an embedding lookup reads only the rows it picks
        weights = min(weights, g.tensors[node.outputs[0]].nbytes)
        counted.difference_update(consts)
    acts = sum(g.tensors[n].nbytes for n in node.inputs if n in g.inputs)
    acts += sum(g.tensors[n].nbytes for n in node.outputs if n in g.outputs)
    acts += sum(g.tensors[n].nbytes for n in (*node.inputs, *node.outputs)
                if not g.tensors[n].is_const and n not in g.inputs and n not in g.outputs
                and n not in interior and g.tensors[n].nbytes > arch.abuf_bytes)
    per_region: dict[str, int] = {}
    for region, n in ((arch.placement.weights, weights), (arch.placement.activations, acts)):
        if n:
            per_region[region] = per_region.get(region, 0) + int(n)
    return int(weights + acts), per_region


