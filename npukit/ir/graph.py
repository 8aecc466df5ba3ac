"""The one IR every stage speaks: a topologically ordered graph of nodes over named tensors.

Layout: 4-D activations are NHWC (frontends convert), conv weights are OHWI
([out_ch, kh, kw, in_ch / groups]), depthwise weights are [1, kh, kw, out_ch] like TFLite.
A float graph has float32 tensors; a quantised graph has int8/int16/int32 tensors with
`QParams`, and every compute node carries integer `params` computed by the quantiser.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .ties import Ties


class DType(enum.Enum):
    F32 = "float32"
    I8 = "int8"
    U8 = "uint8"
    I16 = "int16"
    I32 = "int32"
    I64 = "int64"
    BOOL = "bool"

    @property
    def np(self) -> np.dtype:
        return _NP_DTYPES[self]

    @property
    def itemsize(self) -> int:
        return _NP_DTYPES[self].itemsize

    @staticmethod
    def of(array: NDArray) -> "DType":        # (`np` here would be the property above)
        return DType(np.dtype(array.dtype).name)


_NP_DTYPES = {d: np.dtype(d.value) for d in DType}


class Op(enum.Enum):
    CONV2D = "conv2d"                  # also grouped, depthwise and transposed (input_dilation)
    FULLY_CONNECTED = "fully_connected"
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    MAXIMUM = "maximum"
    MINIMUM = "minimum"
    MAX_POOL = "max_pool"
    AVG_POOL = "avg_pool"
    MEAN = "mean"                      # over any axes (MeanAttrs), e.g. a global average pool
    REDUCE_SUM = "reduce_sum"          # the same reductions (MeanAttrs): sum, largest, smallest
    REDUCE_MAX = "reduce_max"
    REDUCE_MIN = "reduce_min"
    COMPARE = "compare"                # int8 operands -> bool (CompareAttrs: equal, greater, ...)
    LOGICAL = "logical"                # bool operands -> bool (LogicalAttrs: and, or, xor)
    LOGICAL_NOT = "logical_not"
    WHERE = "where"                    # cond ? x : y, element-wise; x, y and the output share quantisation
    ARG_MAX = "arg_max"                # index of the largest (smallest) element along an axis, int32 / int64
    CLAMP = "clamp"                    # relu, relu6, clip
    LEAKY_RELU = "leaky_relu"
    PRELU = "prelu"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    HARD_SWISH = "hard_swish"
    SOFTMAX = "softmax"
    CONCAT = "concat"
    SLICE = "slice"                    # strided slice; Split becomes several slices
    PAD = "pad"
    RESHAPE = "reshape"
    TRANSPOSE = "transpose"
    RESIZE = "resize"
    QUANTIZE = "quantize"              # float -> int (graph inputs) or int -> int (rescale)
    DEQUANTIZE = "dequantize"
    MATMUL = "matmul"                  # activation x activation, batched over leading axes
    LAYER_NORM = "layer_norm"          # over the last axis; inputs x, gamma, beta
    GELU = "gelu"                      # erf form, or tanh approximation
    HOST_FLOAT = "host_float"          # an ONNX node run in float on the host (LSTM, Sqrt, ...)
    HOST_TFLITE = "host_tflite"        # a TFLite builtin run by LiteRT on the host (TOPK_V2, CUMSUM, ...)
    GATHER = "gather"                  # rows of a constant table by an integer index input
    MAGNITUDE = "magnitude"            # sqrt(re^2 + im^2) of the two halves of an axis (STFT)
    UNARY = "unary"                    # an element-wise function (log, exp, abs, ...): a 256-entry table
    LSTM = "lstm"                      # integer LSTM over a batch-major sequence (LstmAttrs)
    GRU = "gru"                        # integer GRU over a batch-major sequence (GruAttrs)


@dataclass(frozen=True)
class QParams:
    """Affine quantisation: real = scale * (q - zero_point); per-axis when scale has >1 entry."""
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> "QParams":
        return QParams((float(scale),), (int(zero_point),))

    @property
    def s(self) -> float:
        assert len(self.scale) == 1, "per-axis quantisation has no single scale"
        return self.scale[0]

    @property
    def zp(self) -> int:
        assert len(set(self.zero_point)) == 1, "per-axis zero points differ"
        return self.zero_point[0]


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: DType
    data: np.ndarray | None = field(default=None, compare=False, repr=False)  # constants only
    quant: QParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def qp(self) -> QParams:
        """The quantisation of a tensor the graph has quantised (every int8/int16 activation)."""
        assert self.quant is not None, f"{self.name} has no quantisation"
        return self.quant

    @property
    def const_data(self) -> np.ndarray:
        """The values of a constant."""
        assert self.data is not None, f"{self.name} is not a constant"
        return self.data

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


# ---- per-op attributes -----------------------------------------------------------------

@dataclass(frozen=True)
class Clamp:
    """A fused activation range in real (float) units; None bound = unbounded."""
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class ConvAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)   # top, left, bottom, right
    groups: int = 1
    input_dilation: tuple[int, int] = (1, 1)        # >1: transposed convolution
    depthwise: bool = False                         # weight is [1, kh, kw, out_ch]
    act: Clamp | None = None


@dataclass(frozen=True)
class FcAttrs:
    act: Clamp | None = None


@dataclass(frozen=True)
class EltwiseAttrs:
    act: Clamp | None = None


@dataclass(frozen=True)
class PoolAttrs:
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False
    act: Clamp | None = None


@dataclass(frozen=True)
class MeanAttrs:
    axes: tuple[int, ...]
    keepdims: bool = True


@dataclass(frozen=True)
class CompareAttrs:
    fn: str                             # kernels/kernels_vpu_compare.PREDICATES


@dataclass(frozen=True)
class LogicalAttrs:
    fn: str                             # kernels/kernels_vpu_compare.CONNECTIVES


@dataclass(frozen=True)
class ArgMaxAttrs:
    axis: int
    keepdims: bool = False
    last: bool = False                  # the last index among equal maxima (ONNX select_last_index)
    dtype: str = "int64"                # the index tensor's type
    smallest: bool = False              # ArgMin

    @property
    def axes(self) -> tuple[int, ...]:  # as a reduction over one axis
        return (self.axis,)


@dataclass(frozen=True)
class UnaryAttrs:
    """fn names the function (kernels/kernels_vpu_unary.FLOAT_FUNCTIONS); alpha / gamma are its
    parameters where it has them (Elu, Selu, Celu, ThresholdedRelu), None for the default."""
    fn: str
    alpha: float | None = None
    gamma: float | None = None


@dataclass(frozen=True)
class LeakyReluAttrs:
    alpha: float


@dataclass(frozen=True)
class SoftmaxAttrs:
    axis: int = -1
    beta: float = 1.0


@dataclass(frozen=True)
class ConcatAttrs:
    axis: int


@dataclass(frozen=True)
class SliceAttrs:
    begin: tuple[int, ...]
    end: tuple[int, ...]
    step: tuple[int, ...]


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[tuple[int, int], ...]   # (before, after) per axis
    value: float = 0.0
    mode: str = "constant"              # constant | reflect


@dataclass(frozen=True)
class MagnitudeAttrs:
    axis: int                           # re = first half of this axis, im = second half


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...]


@dataclass(frozen=True)
class ResizeAttrs:
    size: tuple[int, int]                 # output H, W
    mode: str = "nearest"                 # nearest | bilinear
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class QuantizeAttrs:
    """int -> int QUANTIZE (a requantisation); `dtype` is the output's integer type."""
    dtype: str = "int8"


@dataclass(frozen=True)
class MatMulAttrs:
    """A [..., M, K] x B -> [..., M, N]; B is [..., K, N], or [..., N, K] when transpose_b."""
    transpose_b: bool = False


@dataclass(frozen=True)
class LayerNormAttrs:
    epsilon: float = 1e-5          # normalises over the last axis


@dataclass(frozen=True)
class GeluAttrs:
    approximate: str = "none"      # none (erf) | tanh


@dataclass(frozen=True)
class GatherAttrs:
    """out = table[indices] along axis 0 of the constant table (inputs: table, indices)."""
    axis: int = 0


@dataclass(frozen=True)
class LstmAttrs:
    """TFLite's integer LSTM (kernels/kernels_lstm): inputs x (B, T, I) int8, w_input (4, C, I)
    and w_recurrent (4, C, C) int8 with one scale per gate (i, f, g, o), bias (4, C) int32, the
    initial hidden state (B, C) int8 and cell state (B, C) int16 (scale a power of two);
    outputs (B, T, C) int8 and, optionally, the final hidden and cell states. The hidden state
    is quantised at (hidden_scale, hidden_zp). A reverse LSTM runs its steps from the last
    time index to the first (ONNX direction="reverse"); outputs stay indexed by time.
    TFLite's variants: CIFG when w_input has 3 gates (f, g, o); then, in this order, the extra
    inputs of `peephole` (G, C) int16 cell-to-gate weights (the g gate's row zero), of
    `layer_norm` (G, C) int16 coefficients (gate_scales: the gates' pre-norm intermediates), of
    `projection` (O, C) int8 weights and (O,) int32 bias (the hidden state and outputs then have
    O channels, clipped at proj_clip)."""
    hidden_scale: float
    hidden_zp: int
    cell_clip: float = 0.0             # real-valued clip of the cell state, 0 = none
    reverse: bool = False
    peephole: bool = False
    layer_norm: bool = False
    projection: bool = False
    proj_clip: float = 0.0
    gate_scales: tuple[float, ...] = ()
    gate_clip: float = 0.0             # ONNX's clip of the gates' pre-activations, 0 = none


@dataclass(frozen=True)
class GruAttrs:
    """npukit's integer GRU (kernels/kernels_gru): inputs x (B, T, I) int8, w_input (3, C, I)
    and w_recurrent (3, C, C) int8 with one scale per gate (z, r, n), bias (3, C) int32 (the
    input-side biases), recurrent_bias (C,) int32 (R_n's, inside the reset product; zeros when
    linear_before_reset is 0), the initial hidden state (B, C) int8; outputs (B, T, C) int8
    and, optionally, the final hidden state, all at the hidden state's quantisation. A reverse
    GRU runs its steps from the last time index to the first, as a reverse LSTM. `rnn` "tanh" or
    "relu": ONNX RNN's single-gate cell in the same form (one gate: w_input (1, C, I),
    w_recurrent (1, C, C), bias (1, C), recurrent_bias zeros; kernels_gru.rnn_update)."""
    linear_before_reset: int
    reverse: bool = False
    rnn: str = ""


@dataclass(frozen=True)
class NoAttrs:
    pass


@dataclass(frozen=True)
class Node:
    op: Op
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Any = NoAttrs()
    params: Any = None                       # integer parameters, set by the quantiser
    source: tuple[str, ...] = ()             # source-model node names folded into this node

    def with_(self, **changes) -> "Node":
        return replace(self, **changes)


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    tensors: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    name: str = "model"
    # persistent state (TFLite resource variables): tensor name -> initial value. A variable
    # is readable from the start of every run; at most one node (an end-of-run copy) writes it.
    variables: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    # graph inputs/outputs whose model-level type is float around int8 (a pre-quantised model
    # whose boundary QUANTIZE / DEQUANTIZE the frontend folded into the I/O conversion)
    float_io: frozenset[str] = frozenset()
    # integer graph inputs the model declares with another type than the IR's (ONNX int64 ids
    # held as int32): name -> numpy dtype name. `run` takes them in the declared type.
    declared_int: dict[str, str] = field(default_factory=dict, compare=False)
    ties: Ties = Ties()     # tensors given one quantisation: an unrolled loop's copies of a value (ir.ties)

    def producer(self, tensor: str) -> Node | None:
        for node in self.nodes:
            if tensor in node.outputs:
                return node
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def with_nodes(self, nodes, tensors: dict[str, Tensor] | None = None) -> "Graph":
        """A new graph with `nodes`; tensors no longer referenced are dropped."""
        tensors = dict(self.tensors if tensors is None else tensors)
        used = set(self.inputs) | set(self.outputs) | set(self.variables)
        for n in nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        return replace(self, nodes=tuple(nodes), tensors={k: v for k, v in tensors.items() if k in used})

    @property
    def is_quantised(self) -> bool:
        """Quantised tensors, or none to quantise (booleans and indices only: logic)."""
        return (any(t.quant is not None for t in self.tensors.values())
                or not any(t.dtype is DType.F32 for t in self.tensors.values()))
