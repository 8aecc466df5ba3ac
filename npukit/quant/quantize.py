"""Post-training int8 quantisation of a float graph (TFLite's int8 scheme).

Activations: per-tensor asymmetric int8 from calibrated ranges; tensors that TFLite's
kernels require to share quantisation (concat, pooling, reshape, ...) share one range.
Weights: symmetric int8 per output channel; bias int32 at input scale x weight scale.
Every compute node gets its integer parameters from the kernel library's prepare_*.
A caller that quantises one model several times (a transformer per token count) may pass
`known`, a dict it keeps: the largest pure steps (a dense layer's weights, bias and params,
an embedding table) are then remembered by a digest of their inputs and taken from it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, Graph, Node, NoAttrs, Op, QParams, Tensor
from ..ir.verify import verify
from ..kernels import kernels_mxu as kx
from ..kernels import kernels_vpu as kv
from ..kernels import kernels_vpu_compare as kc
from ..kernels import kernels_relu16 as kr
from ..kernels import kernels_vpu16 as k16
from ..kernels import kernels_vpu_unary as ku
from .calibrate import Range
from .conv_weights import float_conv
from .groups import SAME_AS_INPUT, fixed_outputs, shared_groups
from .quantize_transformer import TRANSFORMER_OPS, quantize_transformer_node
from ..kernels.kernels_vpu16 import Sigmoid16Params, Softmax16Params

UNIT_OUTPUT_16 = {Op.SIGMOID, Op.TANH, Op.SOFTMAX}    # int16 output scale 1/32768, zero point 0 (16x8)
LUT_OPS = {Op.CLAMP, Op.LEAKY_RELU, Op.SIGMOID, Op.TANH, Op.HARD_SWISH, Op.UNARY, Op.LOGICAL_NOT}


@dataclass(frozen=True)
class LutParams:
    table: np.ndarray      # int8[256], indexed by input code + 128


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


def act_qparams(r: Range) -> QParams:
    lo, hi = min(r.lo, 0.0), max(r.hi, 0.0)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise UnsupportedOpError(f"calibration produced a non-finite range [{r.lo}, {r.hi}]")
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QParams.per_tensor(scale, zp)


def assign_qparams(g: Graph, ranges: dict[str, Range]) -> dict[str, QParams]:
    return _assign(g, ranges)[0]


def _assign(g: Graph, ranges: dict[str, Range]) -> tuple[dict[str, QParams], dict[str, Range]]:
    """Per tensor: its int8 params and the merged range of the tensors it must share them with."""
    groups, fixed = shared_groups(g), fixed_outputs(g)
    merged: dict[str, Range] = {}
    for name, r in ranges.items():
        root = groups.find(name)
        m = merged.get(root)
        merged[root] = r if m is None else Range(min(m.lo, r.lo), max(m.hi, r.hi),
                                                 (min(m.full[0], r.full[0]), max(m.full[1], r.full[1])))
    for node in g.nodes:
        if node.op is Op.CONCAT and (root := groups.find(node.outputs[0])) in merged:
            for t in (g.tensors[n] for n in node.inputs):   # a constant piece (a ViT's class token) counts
                if t.is_const and t.dtype is DType.F32 and t.const_data.size:
                    m, d = merged[root], t.const_data
                    merged[root] = _widened_range(m, float(d.min()), float(d.max()))
        if node.op not in (Op.LSTM, Op.GRU):     # their constant initial states take the states' scales
            continue
        for k, out in ((4, 0), (5, 2)) if node.op is Op.LSTM else ((5, 0),):
            t = g.tensors[node.inputs[k]]
            if t.is_const and out < len(node.outputs) and (root := groups.find(node.outputs[out])) in merged:
                m, d = merged[root], t.const_data
                merged[root] = _widened_range(m, float(d.min()), float(d.max()))
    fixed_roots = {groups.find(t): q for t, q in fixed.items()}
    return ({name: fixed_roots.get(groups.find(name)) or act_qparams(merged[groups.find(name)])
             for name in ranges}, {name: merged[groups.find(name)] for name in ranges})


def _widened_range(m: Range, lo: float, hi: float) -> Range:
    return Range(min(m.lo, lo), max(m.hi, hi), (min(m.full[0], lo), max(m.full[1], hi)))


WIDE_CAP = 4.0      # an int16 scale holds the extremes up to this many times the clipped range


def wide_amax(r: Range) -> float:
    """The largest |x| an int16 tensor's scale holds: the observed extremes, not a calibration
    method's clipped range (TFLite's 16x8 scheme calibrates int16 activations by min / max; 1 in
    10^4 values saturated by up to 2x costs far more than the 2x coarser step an int16 tensor
    affords), but no more than WIDE_CAP x the clipped range."""
    clipped = max(abs(r.lo), abs(r.hi), 1e-8)
    return max(clipped, min(max(abs(r.full[0]), abs(r.full[1])), WIDE_CAP * clipped))


def _const_per_tensor(data: np.ndarray) -> tuple[np.ndarray, QParams]:
    q = act_qparams(Range(float(data.min()), float(data.max())))
    return kv.quantize(data, q.s, q.zp), q


def quantize_graph(g: Graph, ranges: dict[str, Range], wide: frozenset[str] = frozenset(),
                   params: bool = True, known: dict | None = None) -> Graph:
    """The int8 graph: same names and structure, integer tensors and integer node params.
    Tensors in `wide` become int16, symmetric (zero point 0) as TFLite's 16-bit scheme.
    `params=False`: activation types and scales only (enough to decide placement). `known`:
    see the module's note."""
    from ..kernels.host_float import host_float_only
    from ..kernels.kernels_lstm import cell_scale
    qp, shared = _assign(g, ranges)
    groups = shared_groups(g)
    tensors: dict[str, Tensor] = dict(g.tensors)
    # a group sharing a sigmoid's / tanh's / softmax's output (a reshape of it: requantise_fixed_outputs
    # split off the groups its fixed range does not hold) takes its fixed int16 scale, as in int8
    unit = {groups.find(n.outputs[0]) for n in g.nodes if n.op in UNIT_OUTPUT_16}
    keep_float = host_float_only(g)
    for name, t in g.tensors.items():
        if name in keep_float:
            continue
        if name in wide:       # one scale for tensors that must share it (pad, reshape, ...)
            amax = wide_amax(shared[name])
            scale = k16.OUT_SCALE_16 if groups.find(name) in unit else float(np.float32(amax / 32767))
            tensors[name] = replace(t, dtype=DType.I16, quant=QParams.per_tensor(scale, 0))
        elif not t.is_const and t.dtype is DType.F32:      # integer inputs (token ids) stay as they are
            tensors[name] = replace(t, dtype=DType.I8, quant=qp[name])
    cells = {groups.find(n) for node in g.nodes if node.op is Op.LSTM for n in (node.inputs[5], *node.outputs[2:])}
    for name in shared:         # an LSTM's cell states (and what shares their scale): int16 at TFLite's power-of-two scale
        if groups.find(name) in cells and name not in keep_float:
            # at most 2^-9, the integer kernel's largest (as TFLite's): a cell past +-64 saturates
            # there, where tanh(c) is 1 to float32's precision
            q = QParams.per_tensor(min(cell_scale(shared[name].lo, shared[name].hi), 2.0 ** -9), 0)
            tensors[name] = replace(g.tensors[name], dtype=DType.I16, quant=q)
    typed = g.with_nodes(g.nodes, tensors)
    return _own_softmax16(attach_params(typed, known)) if params else typed


def _own_softmax16(g: Graph) -> Graph:
    """A graph npukit quantised itself: its int16 softmaxes count a difference below the exp
    table's floor 0, not exp(-10) as LiteRT does (kernels_vpu16.Softmax16Params.floor_tail)."""
    return g.with_nodes(tuple(n.with_(params=replace(n.params, floor_tail=0)) if isinstance(n.params, Softmax16Params)
                              else n for n in g.nodes), g.tensors)


def attach_params(g: Graph, known: dict | None = None) -> Graph:
    """Quantise constants and compute every node's integer params from the activations'
    quantisation. A pre-quantised model (TFLite int8) enters here with its own scales.
    `known`: see the module's note."""
    tensors = {name: t for name, t in g.tensors.items() if not t.is_const or t.dtype is not DType.F32}
    nodes = []
    for node in g.nodes:
        try:
            nodes.append(_quantize_node(g, node, tensors, known))
        except UnsupportedOpError as e:
            raise e.at(node.source) from None
    return verify(g.with_nodes(nodes, tensors), "quantise")


def _const_input(g, node, i, tensors, data=None, wide: bool = False) -> str:
    """Quantise constant input i of `node` per tensor (if not done yet): int8, or with `wide`
    int16 symmetric (a 16x8 operand); returns its name."""
    name = node.inputs[i]
    if name not in tensors:
        values = g.tensors[name].data if data is None else data
        if wide:
            amax = max(float(np.max(np.abs(values))) if values.size else 0.0, 1e-8)
            qparams = QParams.per_tensor(float(np.float32(amax / 32767)), 0)
            tensors[name] = Tensor(name, values.shape, DType.I16, kv.quantize(values, qparams.s, 0, np.int16), qparams)
        else:
            q, qparams = _const_per_tensor(values)
            tensors[name] = Tensor(name, q.shape, DType.I8, q, qparams)
    return name


def remembered(known: dict | None, key: tuple, make):
    """`make()`, or with `known` (see the module's note) its value under `key` (arrays in the
    key stand for a digest of their dtype, shape and bytes), made on first use."""
    if known is None:
        return make()
    k = tuple(_digest(a) if isinstance(a, np.ndarray) else a for a in key)
    if k not in known:
        known[k] = make()
    return known[k]


def _digest(a: np.ndarray) -> tuple:
    """An array's dtype, shape and SHA-256 of its elements in C order (read as stored, without
    a copy, when it is Fortran-ordered: a transposed weight matrix)."""
    order = "F" if a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous else "C"
    flat = a.T if order == "F" else np.ascontiguousarray(a)
    return a.dtype.str, a.shape, order, hashlib.sha256(flat.reshape(-1).view(np.uint8).data).digest()


def _quantize_node(g: Graph, node: Node, tensors: dict[str, Tensor], known: dict | None = None) -> Node:
    op, a = node.op, node.attrs
    ot = tensors[node.outputs[0]]
    if op in (Op.CONV2D, Op.FULLY_CONNECTED):
        x = tensors[node.inputs[0]].qp
        w = g.tensors[node.inputs[1]]
        wide_out = np.int16 if tensors[node.outputs[0]].dtype is DType.I16 else np.int8
        if w.quant is None:     # float weights: symmetric int8 per output channel, int32 bias
            axis = 3 if (op is Op.CONV2D and a.depthwise) else 0
            b64 = tensors[node.inputs[0]].dtype is DType.I16
            bias_f = g.tensors[node.inputs[2]].const_data if len(node.inputs) > 2 else None
            wq, wqp, bias, conv = remembered(known, ("conv", w.const_data, axis, bias_f, b64, x.s, x.zp, ot.qp.s,
                                                      ot.qp.zp, a.act, wide_out),
                                             lambda: float_conv(w.const_data, axis, bias_f, b64, x, ot.qp, a.act,
                                                                 wide_out))
            tensors[node.inputs[1]] = Tensor(node.inputs[1], w.shape, DType.I8, wq, wqp)
            if bias is not None:
                tensors[node.inputs[2]] = replace(bias, name=node.inputs[2])
            return node.with_(params=conv)
        ws = np.asarray(w.quant.scale, np.float32)
        return node.with_(params=kx.prepare_conv(x.s, ws, ot.qp.s, x.zp, ot.qp.zp, a.act, wide_out))
    if op in (Op.ADD, Op.SUB, Op.MUL):       # a constant beside an int16 operand is int16 (16x8)
        wide16 = any(tensors[n].dtype is DType.I16 for n in node.inputs if not g.tensors[n].is_const)
        names = [n if not g.tensors[n].is_const else _const_input(g, node, i, tensors, wide=wide16)
                 for i, n in enumerate(node.inputs)]
        q1, q2 = tensors[names[0]].qp, tensors[names[1]].qp
        if op is Op.MUL:
            mul_out = np.int16 if ot.dtype is DType.I16 else np.int8
            params: kv.AddParams | kv.MulParams = kv.prepare_mul(q1.s, q1.zp, q2.s, q2.zp, ot.qp.s, ot.qp.zp, a.act,
                                                                 mul_out)
        else:
            wide_out = np.int16 if tensors[node.outputs[0]].dtype is DType.I16 else np.int8
            wide_in = any(tensors[n].dtype is DType.I16 for n in names)
            params = kv.prepare_add(q1.s, q1.zp, q2.s, q2.zp, ot.qp.s, ot.qp.zp, a.act, sub=op is Op.SUB,
                                    dtype=wide_out, left_shift=15 if wide_in else 20)
        return node.with_(params=params)
    if op in (Op.MAXIMUM, Op.MINIMUM, Op.WHERE, Op.CONCAT):     # constant operands at the output's quantisation
        inputs = list(node.inputs)
        for i, n in enumerate(node.inputs):
            if g.tensors[n].is_const and g.tensors[n].dtype is DType.F32 and (op is not Op.WHERE or i > 0):
                data = g.tensors[n].const_data
                # a constant shared with another node (TFLite keeps one -0.4 for every layer's
                # max(x, -0.4)) gets a copy at this node's output quantisation
                own = n if n not in tensors else f"{n}/{node.name}"
                # saturated: a -inf (masked_fill's) is the lowest code
                tensors[own] = Tensor(own, data.shape, ot.dtype,
                                      kv.quantize_saturated(data, ot.qp.s, ot.qp.zp, ot.dtype.np), ot.qp)
                inputs[i] = own
        return node.with_(inputs=tuple(inputs))
    if op in (Op.MAX_POOL, Op.AVG_POOL):
        pool_out = np.int16 if ot.dtype is DType.I16 else np.int8
        return node.with_(params=PoolParams(*kx.activation_range(a.act, ot.qp.s, ot.qp.zp, pool_out)))
    if op in (Op.MEAN, Op.REDUCE_SUM):
        xt = tensors[node.inputs[0]]
        count = int(np.prod([xt.shape[i] for i in a.axes]))
        prepare = kv.prepare_mean if op is Op.MEAN else kv.prepare_sum
        return node.with_(params=prepare(xt.qp.s, xt.qp.zp, ot.qp.s, ot.qp.zp, count))
    if op is Op.COMPARE:        # int8 operands at their own scales (constants quantised per tensor)
        names = [n if not g.tensors[n].is_const else _const_input(g, node, i, tensors)
                 for i, n in enumerate(node.inputs)]
        q1, q2 = tensors[names[0]].qp, tensors[names[1]].qp
        return node.with_(params=kc.prepare_comparison(a.fn, q1.s, q1.zp, q2.s, q2.zp))
    if op is Op.LOGICAL:
        return node.with_(params=kc.LogicalParams(kc.CONNECTIVES.index(a.fn)))
    if op in (Op.SIGMOID, Op.TANH, Op.SOFTMAX) and tensors[node.inputs[0]].dtype is DType.I16:
        return node.with_(params=_params_16(node, tensors[node.inputs[0]], ot))
    if op is Op.HARD_SWISH and tensors[node.inputs[0]].dtype is DType.I16:
        x = tensors[node.inputs[0]].qp
        return node.with_(params=kv.hard_swish_lut16(x.s, x.zp, ot.qp.s, ot.qp.zp, ot.dtype.itemsize))
    if op is Op.CLAMP and tensors[node.inputs[0]].dtype is DType.I16:    # 16x8 RELU / RELU6: int16 out
        if ot.dtype is not DType.I16:
            raise UnsupportedOpError(f"{node.name}: clamp of an int16 input needs an int16 output")
        x = tensors[node.inputs[0]].qp
        return node.with_(params=kr.prepare_relu16(x.s, x.zp, ot.qp.s, ot.qp.zp, node.attrs))
    is_abs = op is Op.UNARY and a.fn == "abs"       # LiteRT's int16 ABS is LEAKY_RELU's arithmetic at alpha -1
    if (op is Op.LEAKY_RELU or is_abs) and tensors[node.inputs[0]].dtype is DType.I16:     # a PRELU of slope +-1
        if ot.dtype is not DType.I16:
            raise UnsupportedOpError(f"{node.name}: {'abs' if is_abs else 'leaky ReLU'} of an int16 input needs "
                                     "an int16 output")
        xt = tensors[node.inputs[0]]
        slope, p = kr.leaky_relu16_as_prelu(xt.qp.s, xt.qp.zp, ot.qp.s, ot.qp.zp, -1.0 if is_abs else a.alpha,
                                            xt.shape[-1])
        sn = f"{node.name}/slope"
        tensors[sn] = Tensor(sn, slope.shape, DType.I16, slope, QParams.per_tensor(1.0, 0))
        return node.with_(op=Op.PRELU, inputs=(node.inputs[0], sn), attrs=NoAttrs(), params=p)
    if op is Op.UNARY and tensors[node.inputs[0]].dtype is DType.I16:    # EXP / LOG: LiteRT's int16 table
        x = tensors[node.inputs[0]].qp
        return node.with_(params=ku.unary_lut16(a.fn, x.s, x.zp, ot.qp.s, ot.qp.zp, ot.dtype.itemsize))
    if op in LUT_OPS:
        return node.with_(params=LutParams(_table(node, tensors[node.inputs[0]], ot)))
    if op is Op.PRELU:
        x = tensors[node.inputs[0]].qp
        alpha = _const_input(g, node, 1, tensors, wide=tensors[node.inputs[0]].dtype is DType.I16)
        aq = tensors[alpha].qp
        return node.with_(params=kv.prepare_prelu(x.s, x.zp, aq.s, aq.zp, ot.qp.s, ot.qp.zp))
    if op is Op.SOFTMAX:
        return node.with_(params=kv.prepare_softmax(tensors[node.inputs[0]].qp.s, a.beta, ot.qp.s, ot.qp.zp))
    if op is Op.QUANTIZE:       # int -> int requantisation (pre-quantised models)
        x = tensors[node.inputs[0]].qp
        return node.with_(params=kv.prepare_requantize(x.s, x.zp, ot.qp.s, ot.qp.zp))
    if op in (Op.PAD, Op.ARG_MAX):         # ARG_MAX: the codes order as the real values do
        return node
    if op is Op.MAGNITUDE:
        xt = tensors[node.inputs[0]]
        if xt.dtype is not DType.I16 or ot.dtype not in (DType.I8, DType.I16):
            raise UnsupportedOpError(f"{node.name}: magnitude needs an int16 input and an int8 or int16 output "
                                     f"(got {xt.dtype.value})")
        from ..kernels.kernels_wide import prepare_magnitude
        return node.with_(params=prepare_magnitude(xt.qp.s, ot.qp.s, ot.qp.zp, ot.dtype.np))
    if op is Op.HOST_FLOAT:     # float on the host: constants stay float, output scale in params
        from ..kernels.host_float import HostFloatParams
        for n in node.inputs:
            tensors.setdefault(n, g.tensors[n])
        qs = [tensors[t].quant for t in node.outputs]   # None: stays as computed (float32, int64, bool)
        return node.with_(params=HostFloatParams(tuple(1.0 if q is None else q.s for q in qs),
                                                 tuple(0 if q is None else q.zp for q in qs),
                                                 tuple(tensors[t].dtype.value for t in node.outputs)))
    if op is Op.HOST_TFLITE:    # LiteRT on the host: an int8 model's node keeps its own integers
        from ..kernels.host_tflite import HostTfliteParams
        for n in node.inputs:
            tensors.setdefault(n, g.tensors[n])
        if not a.float_model:
            return node
        qs = [tensors[t].quant for t in node.outputs]   # None: an index type, or float32 (host only)
        return node.with_(params=HostTfliteParams(tuple(1.0 if q is None else q.s for q in qs),
                                                  tuple(0 if q is None else q.zp for q in qs),
                                                  tuple(tensors[t].dtype.value for t in node.outputs)))
    if op in (Op.LSTM, Op.GRU):     # (their kernels load with the first recurrent model)
        from .recurrent_params import gru_params, lstm_params
        return node.with_(params=(lstm_params if op is Op.LSTM else gru_params)(g, node, tensors))
    if op in TRANSFORMER_OPS:
        return quantize_transformer_node(g, node, tensors, lambda key, make: remembered(known, key, make))
    if op in SAME_AS_INPUT:
        for i, n in enumerate(node.inputs):
            if g.tensors[n].is_const:
                raise UnsupportedOpError(f"{node.name}: constant operand of {op.value} is not supported")
        return node
    raise UnsupportedOpError(f"{node.name}: cannot quantise operator {op.value}")


def _params_16(node: Node, x_t: Tensor, out_t: Tensor) -> Sigmoid16Params | Softmax16Params:
    """LOGISTIC / TANH / SOFTMAX with an int16 input: TFLite's 16x8 kernels (int16 out)."""
    if out_t.dtype is not DType.I16:
        raise UnsupportedOpError(f"{node.name}: {node.op.value} of an int16 input needs an int16 output")
    x, out = x_t.qp, out_t.qp
    if node.op is Op.SOFTMAX:
        return k16.prepare_softmax16(x.s, x.zp, node.attrs.beta, out.s, out.zp)
    return k16.prepare_sigmoid16(x.s, x.zp, out.s, out.zp, node.op is Op.TANH)


def _table(node: Node, x_t: Tensor, out_t: Tensor) -> np.ndarray:
    op, a = node.op, node.attrs
    if op is Op.LOGICAL_NOT:        # bool in and out: no quantisation
        return kc.logical_not_table()
    x, out = x_t.qp, out_t.qp
    if op is Op.SIGMOID:
        return kv.logistic_table(x.s, x.zp, out.s, out.zp)
    if op is Op.TANH:
        return kv.tanh_table(x.s, x.zp, out.s, out.zp)
    if op is Op.HARD_SWISH:
        return kv.hard_swish_table(x.s, x.zp, out.s, out.zp)
    if op is Op.UNARY:
        return ku.unary_table(a.fn, x.s, x.zp, out.s, out.zp, a.alpha, a.gamma)
    if op is Op.LEAKY_RELU:
        return kv.leaky_relu_table(x.s, x.zp, out.s, out.zp, a.alpha)
    # CLAMP: TFLite's quantised ReluX: requantise into the output scale, then clamp
    req = kv.prepare_requantize(x.s, x.zp, out.s, out.zp)
    codes = np.arange(-128, 128, dtype=np.int8)
    lo, hi = kx.activation_range(a, out.s, out.zp)
    return np.clip(kv.requantize(codes, req).astype(np.int32), lo, hi).astype(np.int8)
