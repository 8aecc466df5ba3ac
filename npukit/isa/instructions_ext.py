"""Instructions for transformer, audio and int16 workloads: activation x activation MATMUL,
SOFTMAX, RESIZE, the int16 SIGMOID16 and LUT16 tables, MAGNITUDE and LAYERNORM. The opcode
table is npukit.isa.instructions."""
from __future__ import annotations

from dataclasses import dataclass

from .instr_base import Instr, align

LN_HEAD_BYTES = 16      # a LAYERNORM parameter block's int64 eps_q, int32 multiplier, int32 shift
LUT16_BYTES = 1026      # a LUT16's table: 513 int16 anchors
# SOFTMAX phases: a whole row (0), or a row too long for ABUF in chunks, each pass over them all:
# the row maximum (MAX_FIRST on the first chunk, MAX on the others), the sum of the exponentials
# (SUM), the outputs (OUT). The row state between chunks is SOFTMAX_STATE_BYTES per row at `state`.
SOFTMAX_WHOLE, SOFTMAX_MAX_FIRST, SOFTMAX_MAX, SOFTMAX_SUM, SOFTMAX_OUT = range(5)
SOFTMAX_STATE_BYTES = 8  # int32 maximum code, int32 sum (kinds 0 and 2: wrapping; kind 1: float32 bits)


def layer_norm_block(n: int) -> tuple[int, int, int]:
    """Offsets of gamma (int16 [n]) and beta (int32 [n]) in a LAYERNORM parameter block of
    `n` channels, and its size: the scalar head, then gamma, then beta at ALIGN."""
    beta = LN_HEAD_BYTES + align(2 * n)
    return LN_HEAD_BYTES, beta, beta + 4 * n


@dataclass(frozen=True)
class MatMul(Instr):
    """ACC[m, n] (+)= sum_k (A[m, k] - a_zp) * (B[n, k] - b_zp): A is an ABUF tile [m, k_len],
    B an activation tile [n, k_len] held stationary in WBUF. Conv has no operand zero point for
    its weights, which an activation x activation product (attention) needs."""
    src: int
    m: int
    k_len: int
    wgt: int
    n: int
    dst: int
    a_zp: int
    b_zp: int
    accumulate: int


@dataclass(frozen=True)
class Softmax(Instr):
    """Softmax of each of `rows` rows of `cols` int8 values (ABUF). kind 0: TFLite's reference
    fixed-point algorithm (qparams = kernels_vpu.SoftmaxParams); kind 1 (an extension field):
    LiteRT's default float32 exp-table kernel, for input scales the reference refuses
    (qparams = kernels_vpu.SoftmaxTableParams); kind 2: int16 in and out, LiteRT's SoftmaxInt16
    with its interpolated exp and 1 / (1 + x) tables (qparams = kernels_vpu16.Softmax16Params).
    phase (an extension field, with `state`): SOFTMAX_WHOLE, or one pass over a chunk of `cols`
    columns of rows too long for ABUF, the row state (SOFTMAX_STATE_BYTES per row, ABUF) carried
    between chunks: MAX_FIRST sets it to (the chunk's maximum, 0), MAX raises its maximum, SUM
    adds the chunk's exponentials of (x - maximum) to its sum, OUT writes the chunk's outputs
    from its maximum and sum. Every quantity is the whole-row kernel's, so the outputs are too."""
    src: int
    rows: int
    cols: int
    dst: int
    qparams: tuple[int, ...]
    kind: int = 0
    phase: int = 0
    state: int = 0


@dataclass(frozen=True)
class Resize(Instr):
    """Nearest (mode 0) or bilinear (mode 1) resize of an ABUF tile [in_h, in_w, c] to
    [out_h, out_w, c], TFLite's integer index and weight arithmetic. A band (the extension
    fields, set when a whole plane does not fit ABUF): output rows row0 .. row0 + out_h of a
    whole_in_h -> whole_out_h resize, from a tile that holds whole input rows in_row0 ..
    in_row0 + in_h (whole_in_h 0: the tile is the whole plane)."""
    mode: int
    src: int
    in_h: int
    in_w: int
    c: int
    dst: int
    out_h: int
    out_w: int
    align_corners: int
    half_pixel_centers: int
    elem: int = 1          # extension: 2 = int16 in and out
    row0: int = 0          # extension: the band's first output row
    in_row0: int = 0       # extension: the whole input's row at the tile's first
    whole_in_h: int = 0    # extension: the whole input's rows (0: in_h, no band)
    whole_out_h: int = 0   # extension: the whole output's rows


@dataclass(frozen=True)
class Sigmoid16(Instr):
    """ABUF[dst + 2i] = LOGISTIC or TANH (qparams[0] = 1) of the int16 ABUF[src + 2i], i < n: LiteRT's
    int16 kernels (input rescale, 256-entry sigmoid table with linear interpolation, sign fold;
    qparams = kernels_vpu16.Sigmoid16Params). The table is fixed (a ROM), not a program operand."""
    src: int
    n: int
    dst: int
    qparams: tuple[int, ...]


@dataclass(frozen=True)
class Lut16(Instr):
    """A function of the int16 ABUF[src + 2i], i < n, by LiteRT's interpolated int16 table: 513
    int16 anchors at `table` (WBUF), base at 256 + (x >> 7), 7-bit linear interpolation
    (kernels_vpu16.lut16). out_bytes 2: int16 ABUF[dst + 2i]; out_bytes 1: the anchors are in
    1/128 output steps, the int8 ABUF[dst + i] is the rounded value plus `out_zp`, clamped."""
    src: int
    n: int
    table: int
    dst: int
    out_bytes: int
    out_zp: int


@dataclass(frozen=True)
class Magnitude(Instr):
    """ABUF[dst] int8 [outer, c, inner] = clamp(round(sqrt(re^2 + im^2) * mult / 2^shift) + out_zp)
    of the int16 tile [outer, 2, c, inner] at `src` (re then im); exact integer square root.
    int16 out when the clamp's act_max (qparams[4]) is above 127."""
    src: int
    outer: int
    c: int
    inner: int
    dst: int
    qparams: tuple[int, ...]   # kernels_wide.MagnitudeParams in field order


@dataclass(frozen=True)
class LayerNorm(Instr):
    """Integer layer norm (kernels_transformer.layer_norm) of each of `rows` rows of `n`
    elements: ABUF[src] (in_bytes 1: int8, 2: int16) -> ABUF[dst] (out_bytes 1 or 2), clamped
    to [act_min, act_max] after out_zp. The parameter block at `params` (ABUF, layer_norm_block)
    holds the kernel's int64 eps_q, int32 multiplier and shift, int16 gamma and int32 beta."""
    src: int
    rows: int
    n: int
    in_bytes: int
    params: int
    dst: int
    out_bytes: int
    out_zp: int
    act_min: int
    act_max: int
