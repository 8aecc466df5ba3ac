"""The instruction set's shared facts: memory spaces, alignment, parameter-block sizes, engines,
element-wise kinds and the instruction base class. npukit.isa.instructions has the instructions."""
from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, fields

ABUF, WBUF, ACC, REGION0 = 0, 1, 2, 3
SPACE_NAMES = {ABUF: "abuf", WBUF: "wbuf", ACC: "acc"}

ALIGN = 16              # bytes: every tensor, tile and parameter block starts at a multiple
PARAM_BYTES = 12        # per output channel of a conv-style parameter block: int32 bias, mult, shift
WIDE_PARAM_BYTES = 24   # the same as int64 (REQUANT modes 1 to 3, DWCONV mode 2)
LUT_BYTES = 256         # a LUT's table
LSTM_PARAM_ROWS = 5     # int32 rows of an LSTM_CELL's parameter block (per gate channel)
LSTM_CIFG, LSTM_PEEPHOLE, LSTM_LAYER_NORM, LSTM_GATE_CLIP = 1, 2, 4, 8     # LSTM_CELL variant bits
LSTM_GATE_Q4 = 16       # LSTM_CELL variant bit: gate sums in Q4.11 (+-16) instead of TFLite's Q3.12 (+-8)
LSTM_PEEPHOLE_ROWS, LSTM_NORM_ROWS = 3, 5              # the rows each variant appends (gate clip: 1)


def lstm_gates(variant: int) -> int:
    """Gates of an LSTM_CELL: i, f, g, o, or f, g, o with CIFG (the input gate is 1 - f)."""
    return 3 if variant & LSTM_CIFG else 4


def lstm_gate_bits(variant: int) -> int:
    """Integer bits of an LSTM_CELL's gate sums: 3 (Q3.12, TFLite's), 4 with LSTM_GATE_Q4."""
    return 4 if variant & LSTM_GATE_Q4 else 3


def lstm_param_rows(variant: int) -> int:
    """int32 rows of an LSTM_CELL's parameter block: the 5 base rows, then the peephole's
    (weight, multiplier, shift), the layer norm's (coefficient, bias, multiplier, shift,
    variance guard) and the gate clip's (the bound of each gate channel's pre-activation)."""
    return LSTM_PARAM_ROWS + LSTM_PEEPHOLE_ROWS * bool(variant & LSTM_PEEPHOLE) + \
        LSTM_NORM_ROWS * bool(variant & LSTM_LAYER_NORM) + bool(variant & LSTM_GATE_CLIP)


GRU_PARAM_ROWS = 6      # int32 rows of a GRU_CELL's parameter block (per gate channel)
GRU_RNN_TANH, GRU_RNN_RELU = 2, 3     # GRU_CELL modes of ONNX RNN's single-gate cell


def gru_cell_gates(mode: int) -> tuple[int, int]:
    """(input-part gate channels per cell a GRU_CELL reads, gates of its parameter block and
    recurrent accumulators): mode 0 the z, r gates of 3; mode 1 all 3; the RNN modes their one."""
    return ((2, 3), (3, 3), (1, 1), (1, 1))[mode] if 0 <= mode < 4 else (1, 1)


def requant_param_bytes(mode: int) -> int:
    """Bytes per output channel of a REQUANT's (or DWCONV's) parameter block."""
    return WIDE_PARAM_BYTES if mode else PARAM_BYTES


def align(n: int) -> int:
    """`n` rounded up to ALIGN."""
    return -(-n // ALIGN) * ALIGN


class Engine(enum.IntEnum):
    DMA_IN = 0
    DMA_OUT = 1
    MXU = 2
    VPU = 3
    HOST = 4
    DMA_W = 5     # weight and parameter loads: their own queue when the arch has 2+ DMA channels


class Eltwise(enum.IntEnum):
    ADD = 0
    SUB = 1
    MUL = 2
    MAX = 3
    MIN = 4
    PRELU = 5       # b is the quantised slope (alpha)
    COMPARE = 6     # int8 a, b -> byte 0 / 1 (kernels_vpu_compare.ComparisonParams)
    LOGICAL = 7     # bytes a, b (non-zero true) -> 0 / 1 (kernels_vpu_compare.LogicalParams)


@dataclass(frozen=True)
class Instr:
    layer: int
    deps: tuple[int, ...]


def fast_init(cls: type[Instr]) -> None:
    """Gives a frozen instruction class a constructor that stores its fields straight into the
    instance's dict: the same signature, defaults and fields as the generated one, which sets
    each through `object.__setattr__` (about 3x slower; a compile builds tens of thousands)."""
    params, body, ns = [], [], {}
    for f in fields(cls):
        if f.default is MISSING:
            params.append(f.name)
        else:
            ns[f"_{f.name}"] = f.default
            params.append(f"{f.name}=_{f.name}")
        body.append(f"    d[{f.name!r}] = {f.name}\n")
    exec(f"def __init__(self, {', '.join(params)}):\n    d = self.__dict__\n{''.join(body)}", ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)
