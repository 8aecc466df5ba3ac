"""TFLite frontend: a .tflite flatbuffer -> the IR, keeping the model's own quantisation.

An int8 model becomes a quantised graph (every tensor keeps its scale and zero point, per
tensor or per axis); a float model (fp32, or fp16 weights behind DEQUANTIZE) becomes a float
graph that npukit quantises itself. Layouts already match the IR (NHWC, OHWI, [1,kh,kw,K]).

Boundary QUANTIZE (float input -> int8) and DEQUANTIZE (int8 -> float output) fold into the
program's I/O conversion (`Graph.float_io`). Resource variables (CALL_ONCE initialising them
in a second subgraph, VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE) become persistent graph
variables: a read is the variable tensor itself, each assign is one copy at the end of a run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import DType, Graph, Node, Op, SliceAttrs, Tensor
from ..ir.verify import verify
from . import tflite_read as rd
from .tflite_complex import convert_complex
from .tflite_resize import read_resized

_INT_ACTIVATIONS = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_))   # unquantised in int8 models
_STATE_OPS = {"CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}
# operators whose int16 activations (TFLite's 16x8 scheme: int16, zero point 0) npukit lowers; others are refused
INT16_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "QUANTIZE", "ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM",
             "LOGISTIC", "TANH", "SOFTMAX", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESIZE_BILINEAR",
             "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION", "RESHAPE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "RELU", "RELU6",
             "LEAKY_RELU", "EXP", "LOG", "ABS"}


class TfliteConverter:
    """Converts subgraph 0 operator by operator; converters in tflite_ops call back in here."""

    def __init__(self, model: tfl.ModelT, name: str):
        self.model, self.sg = model, model.subgraphs[0]
        self.graph_name = name
        self.quantised = self._is_quantised()
        self.names: dict[int, str] = {}          # TFLite tensor index -> IR tensor name
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.folded: dict[int, np.ndarray] = {}   # DEQUANTIZE of constants, folded to float32
        self.computed: dict[int, np.ndarray] = {}  # outputs of operators evaluated at import
        self.skip: set[int] = set()              # operator indices absorbed into the I/O
        self.float_io: set[str] = set()
        self.handles: dict[int, str] = {}        # VAR_HANDLE output -> variable tensor name
        self.current: dict[str, str] = {}        # variable -> tensor holding its latest value
        self.variables: dict[str, np.ndarray] = {}
        self.made = {int(i) for op in self.sg.operators or [] for i in op.outputs} | {int(i) for i in self.sg.inputs}
        self.complex: dict[int, str] = {}        # complex TFLite tensor -> float [re | im] pair (tflite_complex)
        self.op_index = 0

    # ---- tensors --------------------------------------------------------------------------

    def _is_quantised(self) -> bool:
        for op in self.sg.operators or []:
            if rd.op_name(self.model, op) in {"QUANTIZE", "DEQUANTIZE"} | _STATE_OPS:
                continue
            for i in [*op.inputs, *op.outputs]:
                t = self.sg.tensors[i]
                if i >= 0 and t.type in rd.NP_TYPES and rd.np_dtype(t, i) in _INT_ACTIVATIONS and rd.qparams(t) is not None \
                        and not rd.is_constant(self.model, t):
                    return True
        return False

    def tfl_tensor(self, i: int) -> tfl.TensorT:
        return self.sg.tensors[i]

    def const(self, i: int) -> np.ndarray | None:
        """Constant contents of tensor i (folded DEQUANTIZE results included), else None."""
        if i in self.folded:
            return self.folded[i]
        if i in self.computed:
            return self.computed[i]
        t = self.sg.tensors[i]
        data = rd.buffer_data(self.model, t, i)
        if data is None and i not in self.made and t.type in rd.NP_TYPES and 0 in rd.shape(t):
            return np.zeros(rd.shape(t), rd.np_dtype(t, i))     # an empty constant has no bytes to store
        return data

    def need_const(self, i: int, what: str) -> np.ndarray:
        data = self.const(i)
        if data is None:
            raise UnsupportedOpError(f"{self.where()}: {what} must be a constant tensor")
        return data

    def shape(self, i: int) -> tuple[int, ...]:
        return self.tensors[self.name(i)].shape

    def name(self, i: int) -> str:
        """The IR tensor for TFLite tensor i, created on first use."""
        if i in self.names:
            return self.names[i]
        t = self.sg.tensors[i]
        name = self._unique(rd.tensor_name(t, i))
        data, quant = self.const(i), rd.qparams(t)
        dtype = np.dtype(np.float32) if i in self.folded else rd.np_dtype(t, i)
        if i in self.folded:
            quant = None
        if dtype == np.float16:
            raise UnsupportedOpError(f"tensor {name!r}: float16 outside a DEQUANTIZE of weights")
        if data is None:
            self._check_activation(name, dtype, quant)
        shape = rd.shape(t)
        if data is None and not shape and i not in self.sg.inputs and i not in self.sg.outputs:
            shape = (1,)            # a scalar activation (a global max) is one element on the NPU
        self.tensors[name] = Tensor(name, shape, rd.IR_TYPES[dtype], data, quant)
        self.names[i] = name
        return name

    def _check_activation(self, name: str, dtype: np.dtype, quant) -> None:
        if dtype == np.int16 and (quant is None or any(z != 0 for z in quant.zero_point)):
            raise UnsupportedOpError(f"tensor {name!r}: int16 activation without zero point 0 (16x8 quantisation)")
        if self.quantised and quant is None and dtype not in _INDEX_TYPES + (np.dtype(np.float32),):
            raise ModelError(f"tensor {name!r}: {dtype} activation without quantisation parameters")

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.tensors:
            name, k = f"{base}#{k}", k + 1
        return name

    def fresh(self, base: str, shape: tuple[int, ...], like: str, data: np.ndarray | None = None) -> str:
        """A new tensor with `like`'s type and quantisation."""
        t = self.tensors[like]
        name = self._unique(base)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), t.dtype, data, t.quant)
        return name

    # ---- nodes ----------------------------------------------------------------------------

    def where(self) -> str:
        return f"operator {self.op_index} ({self.op_label})"

    def emit(self, op: Op, inputs: list[str], output: str, attrs=None, suffix: str = "") -> str:
        name = f"{self.op_label.lower()}_{self.op_index}{suffix}"
        kw = {} if attrs is None else {"attrs": attrs}
        self.nodes.append(Node(op, name, tuple(inputs), (output,), source=(self.op_source,), **kw))
        return output

    def reshape(self, src: str, shape: tuple[int, ...], out: str | None = None, suffix: str = "/reshape") -> str:
        from ..ir.graph import ReshapeAttrs
        shape = tuple(int(d) for d in shape)
        if self.tensors[src].shape == shape and out is None:
            return src
        out = out or self.fresh(f"{src}{suffix}", shape, src)
        return self.emit(Op.RESHAPE, [src], out, ReshapeAttrs(shape), suffix)

    # ---- the walk ------------------------------------------------------------------------

    def convert(self) -> Graph:
        from .tflite_ops import CONVERTERS
        self._fold_constant_weights()
        self._fold_boundaries()
        init = self._initial_values()
        used = {int(i) for op in self.sg.operators for i in op.inputs if i >= 0} | set(self.sg.outputs)
        for k, op in enumerate(self.sg.operators):
            self.op_index, self.op_label = k, rd.op_name(self.model, op)
            outs = [rd.tensor_name(self.sg.tensors[i], i) for i in op.outputs if i >= 0]
            self.op_source = f"{self.op_label}:{outs[0] if outs else k}"
            if k in self.skip:
                continue
            if self.op_label in _STATE_OPS:
                self._state_op(op, init)
                continue
            if convert_complex(self, op):
                continue
            self._convert_op(op, CONVERTERS.get(self.op_label), used)
        self._assign_variables()
        inputs = tuple(self.name(i) for i in self.sg.inputs)
        outputs = tuple(self.name(i) for i in self.sg.outputs)
        g = Graph(tuple(self.nodes), {}, inputs, outputs, self.graph_name, dict(self.variables),
                  frozenset(self.float_io))
        g = g.with_nodes(self.nodes, self.tensors)
        # a quantised graph is verified once attach_params has given its nodes integer params
        return g if self.quantised else verify(g, "TFLite import")

    def _convert_op(self, op: tfl.OperatorT, fn, used: set[int]) -> None:
        """NPU nodes from the operator's converter; failing that, a constant fold or a host node.
        A converter that refuses this configuration leaves nothing behind."""
        if self.op_label.startswith("CUSTOM:"):       # LiteRT cannot run it: no host fallback
            if fn is None:
                raise UnsupportedOpError(f"{self.where()}: custom operator {self.op_label[7:]!r} has no "
                                         f"implementation npukit or LiteRT can run")
            fn(self, op)
            return
        if self.op_label not in INT16_OPS and any(
                i >= 0 and self.const(i) is None and rd.np_dtype(self.sg.tensors[i], i) == np.int16
                for i in [*op.inputs, *op.outputs]):
            raise UnsupportedOpError(f"{self.where()}: int16 activations (16x8 quantisation) of "
                                     f"{self.op_label} are not supported")
        reason = f"no NPU kernel for TFLite {self.op_label}"
        if self.quantised and any(i >= 0 and self.const(i) is None
                                  and rd.np_dtype(self.sg.tensors[i], i) == np.float32
                                  for i in [*op.inputs, *op.outputs]):
            fn, reason = None, reason + ": float tensors inside an int8 model"
        if self._constant_op(op) and self._fold(op):     # shape arithmetic (SHAPE, slices, PACK)
            return
        if fn is not None:
            saved = len(self.nodes), dict(self.tensors), dict(self.names)
            try:
                fn(self, op)
                return
            except UnsupportedOpError as e:
                del self.nodes[saved[0]:]
                self.tensors, self.names = saved[1], saved[2]
                reason += ": " + str(e).removeprefix(self.where() + ": ")
        if not self._fold(op):
            from .tflite_host import emit_host
            emit_host(self, op, reason, used)

    def _fold(self, op: tfl.OperatorT) -> bool:
        """The operator's outputs computed now if its inputs are constant (by LiteRT, whose
        host-side modules load only for a model that has such an operator)."""
        from .tflite_host import fold
        return fold(self, op)

    def _constant_op(self, op: tfl.OperatorT) -> bool:
        """All of the operator's inputs are constant and none of its outputs is the graph's."""
        ins = [i for i in op.inputs if i >= 0]
        return bool(ins) and all(self.const(i) is not None for i in ins) \
            and not set(op.outputs) & set(self.sg.outputs)

    def _fold_constant_weights(self) -> None:
        """DENSIFY of a (sparse) constant becomes the dense constant tflite_read made of it;
        DEQUANTIZE of a constant (fp16 or int8 weights) becomes a float32 constant."""
        for k, op in enumerate(self.sg.operators):
            kind = rd.op_name(self.model, op)
            if kind == "DENSIFY" and (dense := self.const(op.inputs[0])) is not None:
                self.computed[op.outputs[0]] = dense
                self.skip.add(k)
            if kind != "DEQUANTIZE":
                continue
            src = self.sg.tensors[op.inputs[0]]
            data = self.const(op.inputs[0])
            if data is None:
                continue
            if data.dtype == np.float16:
                self.folded[op.outputs[0]] = data.astype(np.float32)
            else:
                q = rd.qparams(src)
                if q is None:
                    raise ModelError(f"operator {k}: DEQUANTIZE of an unquantised {data.dtype} constant")
                shape = [1] * data.ndim
                if q.axis is not None:
                    shape[q.axis] = -1
                scale = np.asarray(q.scale, np.float32).reshape(shape)
                zp = np.asarray(q.zero_point, np.float32).reshape(shape)
                self.folded[op.outputs[0]] = ((data.astype(np.float32) - zp) * scale).astype(np.float32)
            self.skip.add(k)

    def _fold_boundaries(self) -> None:
        """float input -> QUANTIZE and DEQUANTIZE -> float output become float I/O of an int8 graph."""
        if not self.quantised:
            return
        ops = self.sg.operators
        for i in self.sg.inputs:
            if rd.np_dtype(self.sg.tensors[i], i) != np.float32:
                continue
            users = [k for k, op in enumerate(ops) if i in list(op.inputs)]
            if len(users) != 1 or rd.op_name(self.model, ops[users[0]]) != "QUANTIZE":
                raise UnsupportedOpError(f"float input {rd.tensor_name(self.sg.tensors[i], i)!r} of an int8 "
                                         f"model must feed exactly one QUANTIZE")
            self._alias(ops[users[0]].outputs[0], i)
            self.skip.add(users[0])
        for i in self.sg.outputs:
            if rd.np_dtype(self.sg.tensors[i], i) != np.float32:
                continue
            k = next((k for k, op in enumerate(ops) if i in list(op.outputs)), None)
            if k is None or rd.op_name(self.model, ops[k]) != "DEQUANTIZE":
                raise UnsupportedOpError(f"float output {rd.tensor_name(self.sg.tensors[i], i)!r} of an int8 "
                                         f"model must come from a DEQUANTIZE")
            self._alias(ops[k].inputs[0], i)
            self.skip.add(k)

    def _alias(self, int_index: int, io_index: int) -> None:
        """The int8 tensor `int_index` takes the name of float graph I/O tensor `io_index`."""
        t = self.sg.tensors[int_index]
        name = self._unique(rd.tensor_name(self.sg.tensors[io_index], io_index))
        dtype = rd.np_dtype(t, int_index)
        self._check_activation(name, dtype, rd.qparams(t))
        self.tensors[name] = Tensor(name, rd.shape(t), rd.IR_TYPES[dtype], None, rd.qparams(t))
        self.names[int_index] = self.names[io_index] = name
        self.float_io.add(name)

    # ---- resource variables ----------------------------------------------------------------

    def _handle_key(self, sg: tfl.SubGraphT, op: tfl.OperatorT) -> str:
        o = op.builtinOptions
        parts = [(x or b"").decode() if isinstance(x, bytes) else (x or "") for x in (o.container, o.sharedName)]
        return "variable:" + "/".join(p for p in parts if p)

    def _initial_values(self) -> dict[str, tuple[np.ndarray, tfl.TensorT]]:
        """Run the CALL_ONCE subgraph symbolically: it may only assign constants to variables."""
        init: dict[str, tuple[np.ndarray, tfl.TensorT]] = {}
        for op in self.sg.operators:
            if rd.op_name(self.model, op) != "CALL_ONCE":
                continue
            idx = op.builtinOptions.initSubgraphIndex
            if not 0 < idx < len(self.model.subgraphs):
                raise ModelError(f"CALL_ONCE names missing subgraph {idx}")
            sg = self.model.subgraphs[idx]
            handles: dict[int, str] = {}
            for sop in sg.operators:
                kind = rd.op_name(self.model, sop)
                if kind == "VAR_HANDLE":
                    handles[sop.outputs[0]] = self._handle_key(sg, sop)
                elif kind == "ASSIGN_VARIABLE":
                    h, v = sop.inputs[0], sop.inputs[1]
                    data = rd.buffer_data(self.model, sg.tensors[v], v)
                    if h not in handles or data is None:
                        raise UnsupportedOpError("the CALL_ONCE subgraph may only assign constants to variables")
                    init[handles[h]] = (data, sg.tensors[v])
                else:
                    raise UnsupportedOpError(f"{kind} inside the CALL_ONCE initialisation subgraph")
        return init

    def _state_op(self, op: tfl.OperatorT, init) -> None:
        kind = self.op_label
        if kind == "CALL_ONCE":
            return
        if self.quantised is False:
            raise UnsupportedOpError(f"{self.where()}: variables in a float model are not supported")
        if kind == "VAR_HANDLE":
            key = self._handle_key(self.sg, op)
            if key not in init:
                raise ModelError(f"{self.where()}: variable {key!r} is never initialised by CALL_ONCE")
            if key not in self.variables:
                data, t = init[key]
                if data.dtype == np.float32:
                    raise UnsupportedOpError(f"{self.where()}: float variable {key!r} in an int8 model")
                if data.dtype == np.int16:
                    raise UnsupportedOpError(f"{self.where()}: int16 variable {key!r} (16x8) is not supported")
                self._check_activation(key, data.dtype, rd.qparams(t))
                self.tensors[key] = Tensor(key, data.shape, rd.IR_TYPES[data.dtype], None, rd.qparams(t))
                self.variables[key] = data
                self.current[key] = key
            self.handles[op.outputs[0]] = key
            return
        handle = self.handles.get(op.inputs[0])
        if handle is None:
            raise ModelError(f"{self.where()}: {kind} of a resource that is not a VAR_HANDLE")
        key = handle
        var = self.tensors[key]
        if kind == "READ_VARIABLE":
            out = self.sg.tensors[op.outputs[0]]
            if rd.shape(out) != var.shape or rd.qparams(out) != var.quant:
                raise ModelError(f"{self.where()}: read of {key!r} changes its shape or quantisation")
            self.names[op.outputs[0]] = self.current[key]
        else:   # ASSIGN_VARIABLE
            value = self.name(op.inputs[1])
            v = self.tensors[value]
            if v.shape != var.shape or v.dtype is not var.dtype or v.quant != var.quant:
                raise ModelError(f"{self.where()}: assignment to {key!r} changes its shape, type or quantisation")
            self.current[key] = value

    def _assign_variables(self) -> None:
        """Each variable whose value changed gets one copy into its persistent tensor, last."""
        for k, (var, value) in enumerate(self.current.items()):
            if value == var:
                continue
            shape = self.tensors[var].shape
            self.op_label, self.op_index, self.op_source = "ASSIGN_VARIABLE", len(self.sg.operators) + k, var
            src = value
            if self.tensors[value].is_const:
                raise UnsupportedOpError(f"assigning a constant to {var!r} inside the model is not supported")
            self.emit(Op.SLICE, [src], var, SliceAttrs((0,) * len(shape), shape, (1,) * len(shape)))


def load_tflite(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Import a .tflite model. `input_shapes` may change only the dimensions the file marks
    dynamic (-1 in its shape signature); LiteRT resolves the other tensors' shapes."""
    path = Path(path)
    model = read_resized(path, dict(input_shapes or {}))
    g = TfliteConverter(model, path.stem).convert()
    _check_quantised_types(g)
    return g


def _check_quantised_types(g: Graph) -> None:
    if not g.is_quantised:
        return
    for node in g.nodes:
        out = g.tensors[node.outputs[0]]
        if out.dtype is DType.U8 and not (node.op is Op.QUANTIZE and node.outputs[0] in g.outputs):
            raise UnsupportedOpError(f"{node.name}: uint8 tensors are supported only as QUANTIZE graph outputs")
