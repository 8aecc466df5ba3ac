"""The instruction set: coarse, tile-level commands for four engines.

Each instruction is a frozen dataclass of integers (tuples of integers for shapes and
strides). `deps` lists the indices of earlier instructions that must finish first: the
dependency tokens the timing model waits on. Memory spaces are SRAMs (ABUF, WBUF, ACC) or
off-chip regions (numbered from REGION0 in the order of the arch's `regions`).
The plain definition of every instruction is npukit.sim.plain, written once; which bytes each
reads and writes is npukit.isa.ranges. This module has the core instructions and the opcode
table; the shared facts (spaces, alignment, engines, the base class) are in instr_base, the
transformer, audio and int16 instructions in instructions_ext, both re-exported here.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from .instr_base import (ABUF, ACC, ALIGN, GRU_PARAM_ROWS, GRU_RNN_RELU, GRU_RNN_TANH, LSTM_CIFG,  # noqa: F401
                         LSTM_GATE_CLIP, LSTM_GATE_Q4, LSTM_LAYER_NORM, LSTM_PARAM_ROWS, LSTM_PEEPHOLE, LUT_BYTES, PARAM_BYTES,
                         REGION0, SPACE_NAMES, WBUF, WIDE_PARAM_BYTES,
                         Eltwise, Engine, Instr, align, fast_init, gru_cell_gates, lstm_gates, lstm_param_rows,
                         requant_param_bytes)
from .instructions_ext import (LN_HEAD_BYTES, LUT16_BYTES, SOFTMAX_MAX, SOFTMAX_MAX_FIRST,  # noqa: F401
                               SOFTMAX_OUT, SOFTMAX_STATE_BYTES, SOFTMAX_SUM, SOFTMAX_WHOLE, LayerNorm,
                               Lut16, Magnitude, MatMul, Resize, Sigmoid16, Softmax, layer_norm_block)


@dataclass(frozen=True)
class Dma(Instr):
    """Strided 4-D copy of `shape` elements of `elem` bytes between any two spaces.

    codec 1 (an extension field, npukit.isa.wcodec.RICE): the source is one compressed stream
    of `packed` bytes at `src` (src_strides all 0), decoded on the way to the destination
    pattern (the weight decoder in the DMA path)."""
    src_space: int
    src: int
    src_strides: tuple[int, int, int, int]
    dst_space: int
    dst: int
    dst_strides: tuple[int, int, int, int]
    shape: tuple[int, int, int, int]
    elem: int
    codec: int = 0         # extension: 1 = compressed source stream
    packed: int = 0        # extension: its length in bytes


@dataclass(frozen=True)
class Fill(Instr):
    """Set `n` bytes of a space to a byte value (padding borders)."""
    space: int
    addr: int
    n: int
    value: int


@dataclass(frozen=True)
class Conv(Instr):
    """ACC[out_h*out_w, k] (+)= sum (X - zp) * W over the im2col window of an ABUF tile.

    X is [in_h, in_w, c_stride] int8 at `src` using channels [c_off, c_off + c_len); W is
    [k, kh, kw, c_len] int8 at `wgt`. The tile is dilated by `in_dil`, then padded by
    pad_t/pad_l (and as far as needed below/right) with the zero point.
    in_bytes 2 (an extension field): X is int16 with zero point 0 (16x8), run as two int8
    passes, hi byte and lo byte, summed as 256 * hi + lo (c_stride, c_off in elements) into
    int64 accumulators ACC[out_h*out_w, k] (no overflow, as LiteRT's 16x8 kernels).
    """
    src: int
    in_h: int
    in_w: int
    c_stride: int
    c_off: int
    c_len: int
    wgt: int
    dst: int
    out_h: int
    out_w: int
    k: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    in_dil: tuple[int, int]
    pad_t: int
    pad_l: int
    zp: int
    accumulate: int
    dataflow: int          # 0 weight stationary, 1 output stationary
    in_bytes: int = 1      # extension: 2 = int16 input


@dataclass(frozen=True)
class DwConv(Instr):
    """Depthwise with its output stage: ABUF[pix, k] = requant(sum (X[..., k // mult] - zp) *
    W[kh, kw, k]) using int32 bias, mult, shift at `params` (WBUF); runs on `engine`. The
    accumulators stay in the engine (MXU columns or VPU lanes): no ACC round trip.
    Extension fields: in_bytes 2, X is int16 (two int8 byte passes as Conv's); out_bytes 2,
    the output is int16; mode 2, the 16x8 output stage of Requant mode 2 (int64 bias, mult,
    shift at `params`). QUANTIZE between int8 and int16 is a 1x1 DwConv of weight 1, mode 0."""
    src: int
    in_h: int
    in_w: int
    c: int
    wgt: int
    params: int
    dst: int
    out_h: int
    out_w: int
    mult: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_t: int
    pad_l: int
    zp: int
    out_zp: int
    act_min: int
    act_max: int
    engine: int
    in_bytes: int = 1      # extension: 2 = int16 input
    out_bytes: int = 1     # extension: 2 = int16 output
    mode: int = 0          # extension: 2 = 16x8 output stage (int64 params)


@dataclass(frozen=True)
class Requant(Instr):
    """ABUF[pix, c_off + k] = clamp(scale_k(ACC[pix, k] + bias[k]) + zp).

    mode 0 (convolutions): scale_k is TFLite's Q31 MultiplyByQuantizedMultiplier and `params`
    (WBUF) holds int32 bias[k], mult[k], shift[k]. mode 1 (fully connected): scale_k is the
    exact double-precision scale mantissa[k] * 2^exponent[k] with round half away, and
    `params` holds int64 bias[k], mantissa[k], exponent[k]. mode 2 (16x8 convolutions):
    `params` holds int64 bias[k], mult[k], shift[k], scale_k is the int64 form of
    MultiplyByQuantizedMultiplier (16-bit multiplier, one rounding) and the output is int16
    (dst_pix_stride and dst_c_off in elements). mode 3 (16x8 fully connected): mode 1's params
    and scale, the output int16. Modes 2 and 3 read int64 accumulators (Conv.in_bytes 2).
    """
    src: int
    n_pix: int
    k: int
    params: int
    dst: int
    dst_pix_stride: int
    dst_c_off: int
    out_zp: int
    act_min: int
    act_max: int
    mode: int


@dataclass(frozen=True)
class Elementwise(Instr):
    """out[i, j] = f(a[i, j], b[i*b_strides[0] + j*b_strides[1]]); a and out are [rows, cols]."""
    kind: int
    a_space: int
    a: int
    b_space: int
    b: int
    b_strides: tuple[int, int]
    dst: int
    rows: int
    cols: int
    qparams: tuple[int, ...]   # the kernel's integer params, in kernels_vpu field order
    elem: int = 1              # extension: 2 = int16 operands and output (ADD / SUB / MUL / MAX / MIN)


@dataclass(frozen=True)
class Lut(Instr):
    """ABUF[dst + i] = table[ABUF[src + i] + 128] for i < n; the 256-byte table is in WBUF."""
    src: int
    n: int
    table: int
    dst: int


@dataclass(frozen=True)
class Pool(Instr):
    """Max (kind 0) or average (kind 1) pooling of an ABUF tile [in_h, in_w, c]."""
    kind: int
    src: int
    in_h: int
    in_w: int
    c: int
    dst: int
    out_h: int
    out_w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad_t: int
    pad_l: int
    pad_b: int
    pad_r: int
    act_min: int
    act_max: int
    elem: int = 1          # extension: 2 = int16 in and out


@dataclass(frozen=True)
class Mean(Instr):
    """Reduce the `n` rows of an ABUF tile [n, c] -> [c]. kind 0: TFLite MEAN's integer
    arithmetic with qparams = kernels_vpu.MeanParams; kind (an extension field) 1: the largest
    code, 2: the smallest (qparams empty), 3: SUM with qparams = kernels_vpu.SumParams."""
    src: int
    n: int
    c: int
    dst: int
    qparams: tuple[int, ...]
    kind: int = 0          # extension: 0 mean, 1 max, 2 min, 3 sum
    elem: int = 1          # extension: 2 = int16 in and out (mean, max, min)


@dataclass(frozen=True)
class ArgMax(Instr):
    """ABUF[dst] = the index (int32 for elem 4, int64 for elem 8) of the largest (`smallest`: the
    smallest) code in each column of the int8 ABUF tile [n, c]: the first of equal ones, or the
    last when `last`."""
    src: int
    n: int
    c: int
    dst: int
    elem: int
    last: int
    smallest: int


@dataclass(frozen=True)
class Select(Instr):
    """ABUF[dst + i] = ABUF[a + i] if ABUF[cond + i] != 0 else ABUF[b + i], for i < n (bytes)."""
    cond: int
    a: int
    b: int
    dst: int
    n: int


@dataclass(frozen=True)
class Host(Instr):
    """Run host segment `segment` on the CPU beside the NPU (tensors in off-chip memory)."""
    segment: int


@dataclass(frozen=True)
class Gather(Instr):
    """Indexed row copy (an embedding lookup) on the DMA path: for i < n, read id i (a signed
    little-endian integer of `id_bytes`, 4 or 8, at ids + i * id_bytes in `ids_space`) and
    copy the table row of `row_bytes` at src + id * row_bytes in `src_space` to
    dst + i * row_bytes in `dst_space`. The table has `rows` rows; an id outside [0, rows)
    stops the run with an error (TFLite's GATHER refuses it too). One descriptor per row."""
    ids_space: int
    ids: int
    n: int
    id_bytes: int
    src_space: int
    src: int
    rows: int
    row_bytes: int
    dst_space: int
    dst: int


@dataclass(frozen=True)
class LstmCell(Instr):
    """One step of TFLite's integer LSTM after its matmuls (kernels_lstm.cell_update) for n rows
    of c cells; gate channels j < G = lstm_gates(variant) c in gate order i, f, g, o (f, g, o
    with CIFG). The input part is sat16(MBQM(ACC[src + 4 (r src_stride + j)] + bias[j],
    in_mult[j], in_shift[j])), the gates sat16(MBQM(ACC[rec + 4 (G r + j)], rec_mult[j],
    rec_shift[j]) + input part); `params` (WBUF) holds lstm_param_rows(variant) int32 rows of G
    channels: bias, in_mult, in_shift, rec_mult, rec_shift, then the peephole's and the layer
    norm's (instr_base.lstm_param_rows). The int16 cell state ABUF[cell] [n, c] is updated in
    place, the int8 hidden state written to ABUF[dst] [n, c]; qparams =
    kernels_lstm.LstmCellParams. `variant` bits: LSTM_CIFG, LSTM_PEEPHOLE, LSTM_LAYER_NORM
    (which normalises each gate over the instruction's c cells), LSTM_GATE_CLIP (ONNX's clip:
    each gate sum clamped to +-its row's bound before the peephole and activation), LSTM_GATE_Q4
    (the gate sums and their logistic / tanh in Q4.11 instead of Q3.12; not with layer norm)."""
    src: int
    src_stride: int            # int32 accumulators between the input part's rows
    rec: int
    params: int
    cell: int
    dst: int
    n: int
    c: int
    qparams: tuple[int, ...]
    variant: int = 0


@dataclass(frozen=True)
class GruCell(Instr):
    """npukit's integer GRU after its matmuls (kernels_gru) for n rows of c cells; gate channels
    j < 3c in gate order z, r, n. The input part is sat16(MBQM(ACC[src + 4 (r src_stride + j)]
    + bias[j], in_mult[j], in_shift[j])); ACC[rec] [n, 2c] holds the z and r gates' recurrent
    accumulators, ACC[rec_n] [n, c] the n gate's; `params` (WBUF) the int32 rows bias, in_mult,
    in_shift, rec_mult, rec_shift, rec_bias of 3c channels; ABUF[h] [n, c] the int8 hidden
    state. mode 0 (kernels_gru.reset_hidden) writes r h as int8 to ABUF[dst] [n, c] and reads
    only the first 2c channels of each input row and no rec_n; mode 1 (kernels_gru.cell_update)
    writes the new hidden state. Modes GRU_RNN_TANH and GRU_RNN_RELU are ONNX RNN's single-gate
    cell (kernels_gru.rnn_update): one gate channel per cell (input part [n, c], ACC[rec] [n, c],
    a block of GRU_PARAM_ROWS rows of c channels, no rec_n), h' = act(gate) requantised.
    qparams = kernels_gru.GruCellParams."""
    src: int
    src_stride: int            # int32 accumulators between the input part's rows
    rec: int
    rec_n: int
    params: int
    h: int
    dst: int
    n: int
    c: int
    mode: int
    qparams: tuple[int, ...]


OPCODES: tuple[type[Instr], ...] = (Dma, Fill, Conv, DwConv, Requant, Elementwise, Lut, Pool, Mean, Host,
                                    MatMul, Softmax, Resize, Magnitude, ArgMax, Select, Sigmoid16,
                                    Gather, LayerNorm, Lut16, LstmCell, GruCell)
for _cls in OPCODES:
    fast_init(_cls)
ENGINE_OF = {Dma: None, Fill: Engine.DMA_IN, Conv: Engine.MXU, DwConv: None, Requant: Engine.VPU,
             Elementwise: Engine.VPU, Lut: Engine.VPU, Pool: Engine.VPU, Mean: Engine.VPU,
             Host: Engine.HOST, MatMul: Engine.MXU, Softmax: Engine.VPU, Resize: Engine.VPU,
             Magnitude: Engine.VPU, ArgMax: Engine.VPU, Select: Engine.VPU, Sigmoid16: Engine.VPU,
             Gather: Engine.DMA_IN, LayerNorm: Engine.VPU, Lut16: Engine.VPU, LstmCell: Engine.VPU,
             GruCell: Engine.VPU}


def elem_size(ins: Instr) -> int:
    """Bytes per element of a VPU instruction's operands: 2 for the int16 (16x8) forms."""
    if isinstance(ins, (Sigmoid16, Lut16)) or isinstance(ins, Softmax) and ins.kind == 2:
        return 2
    return getattr(ins, "elem", 1) if not isinstance(ins, (Dma, ArgMax)) else 1


def engine_of(ins: Instr) -> Engine:
    if isinstance(ins, Dma):
        if ins.src_space < REGION0 <= ins.dst_space:
            return Engine.DMA_OUT
        return Engine.DMA_W if ins.dst_space == WBUF else Engine.DMA_IN
    if isinstance(ins, DwConv):
        return Engine(ins.engine)
    engine = ENGINE_OF[type(ins)]
    assert engine is not None       # None only for the kinds above
    return engine


def field_layout(cls: type[Instr]) -> list[tuple[str, int]]:
    """(field name, arity) for the payload fields after layer and deps (extensions excluded)."""
    out = []
    for f in fields(cls)[2:]:
        if f.default is not MISSING:
            continue
        ann = str(f.type)
        out.append((f.name, ann.count("int") if ann.startswith("tuple") and "..." not in ann else
                    (-1 if "..." in ann else 1)))
    return out


def extension_fields(cls: type[Instr]) -> list[str]:
    """Trailing integer fields with a default: encoded only when one differs from it, so
    binaries that do not use them are unchanged (see isa.encoding)."""
    return [f.name for f in fields(cls)[2:] if f.default is not MISSING]
