"""Seeded mutators for the fuzz suite: bytes, JSON-like trees, TOML text, ONNX protobufs and
TFLite flatbuffers. Every mutator takes a `random.Random` and is deterministic given it."""
from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import numpy as np

HUGE_INTS = (0, -1, 1, 2, 3, 255, 256, 2**15, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, 2**63 - 1, -2**31, -2**63)
EVIL_FLOATS = (0.0, -0.0, -1.0, 1e-45, 1e-300, 1e30, 1e308, math.inf, -math.inf, math.nan)


def evil_value(rng: random.Random) -> Any:
    """A value chosen to break a checker: huge / negative / zero numbers, wrong types."""
    pick = rng.randrange(10)
    if pick < 4:
        return rng.choice(HUGE_INTS)
    if pick < 6:
        return rng.choice(EVIL_FLOATS)
    return rng.choice(["", "x", "auto", "../../etc/passwd", "\x00", "é" * 3, None, True, False,
                       [], {}, [1, 2], {"a": 1}, [[]], "9" * 400])


DEEP = "__fuzz_deep__"      # stands for nesting too deep to build as Python objects


def nested(depth: int) -> Any:
    out: Any = 0
    for _ in range(depth):
        out = [out]
    return out


# ---------------------------------------------------------------- bytes


def mutate_bytes(data: bytes, rng: random.Random, keep_head: int = 0) -> bytes:
    """One to four flips, truncations, insertions or splices (the first `keep_head` bytes kept)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if len(b) <= keep_head + 1:
            break
        pos = rng.randrange(keep_head, len(b))
        op = rng.randrange(6)
        if op == 0:
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op == 2:
            del b[pos:]
        elif op == 3:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4:
            del b[pos:pos + rng.randint(1, 64)]
        else:                       # a 4- or 8-byte integer field set to an extreme
            n = rng.choice((4, 8))
            b[pos:pos + n] = rng.choice((b"\xff" * n, b"\x7f" + b"\xff" * (n - 1), bytes(n), b"\x00\x00\x00\x80"[:n]))
    return bytes(b)


# ---------------------------------------------------------------- JSON-like trees


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, prefix + (i,))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def mutate_tree(tree: Any, rng: random.Random, deep: bool = True) -> Any:
    """A copy of a JSON-like tree with one to three nodes replaced, deleted, duplicated or
    added (`deep` also tries deep nesting)."""
    tree = copy.deepcopy(tree)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            return evil_value(rng)
        path = rng.choice(paths)
        parent, key = _get(tree, path[:-1]), path[-1]
        op = rng.randrange(10)
        value = parent[key]
        if op < 5:
            parent[key] = evil_value(rng)
        elif op == 5 and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[key] = rng.choice((value * 1000, -value, value + 1, value - 1, value * 2**20, float(value)))
        elif op == 6:
            del parent[key]
        elif op == 7 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        elif op == 8 and isinstance(parent, dict):
            parent[rng.choice(("unknown", "kind", "params_kind", "array", "attrs", "x" * 30))] = evil_value(rng)
        elif deep:
            parent[key] = nested(70) if rng.random() < 0.5 else DEEP
        else:
            parent[key] = type(value)() if isinstance(value, (list, dict, str)) else None
    return tree


def dumps_json(tree: Any) -> bytes:
    """JSON as npukit writes it, non-finite floats allowed (a crafted file may hold them)."""
    deep = "[" * 100_000 + "]" * 100_000
    return json.dumps(tree, allow_nan=True).replace(json.dumps(DEEP), deep).encode()


# ---------------------------------------------------------------- TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return '""'                      # None has no TOML form: an empty string stands in


def dumps_toml(data: dict) -> str:
    """TOML for a tree of tables, arrays of tables and values (anything tomllib reads back)."""
    lines = [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in data.items() if not _table_like(v)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{json.dumps(str(k))}]")
            lines += [f"{json.dumps(str(kk))} = {_toml_value(vv)}" for kk, vv in v.items()]
        elif _table_like(v):
            for row in v:
                lines.append(f"[[{json.dumps(str(k))}]]")
                lines += [f"{json.dumps(str(kk))} = {_toml_value(vv)}" for kk, vv in row.items()]
    return "\n".join(lines) + "\n"


def _table_like(v: Any) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v))


def mutate_toml(data: dict, text: str, rng: random.Random) -> str:
    """A mutated TOML document: mostly a tree mutation written back, sometimes line or byte edits."""
    op = rng.randrange(10)
    if op < 7:
        return dumps_toml(_as_table(mutate_tree(data, rng, deep=False)))
    lines = text.splitlines()
    if op < 9 and lines:
        i = rng.randrange(len(lines))
        if op == 7:
            del lines[i]
        else:
            lines.insert(i, lines[rng.randrange(len(lines))])
        return "\n".join(lines) + "\n"
    return mutate_bytes(text.encode(), rng).decode("utf-8", "replace")


def _as_table(tree: Any) -> dict:
    return tree if isinstance(tree, dict) else {"value": tree}


# ---------------------------------------------------------------- ONNX


def mutate_onnx(model, rng: random.Random):
    """A mutated copy of an onnx.ModelProto: one to three structure-aware edits."""
    import onnx
    m = copy.deepcopy(model)
    g = m.graph
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(16)
        if op == 0 and g.node:                              # attribute ints to extremes
            attrs = [a for n in g.node for a in n.attribute]
            if attrs:
                a = rng.choice(attrs)
                if a.ints:
                    a.ints[rng.randrange(len(a.ints))] = rng.choice(HUGE_INTS)
                elif rng.random() < 0.5:
                    a.i = rng.choice(HUGE_INTS)
                else:
                    a.f = rng.choice(EVIL_FLOATS)
        elif op == 1 and g.node:                            # attribute type or list length changed
            n = rng.choice(g.node)
            if n.attribute:
                a = rng.choice(n.attribute)
                choice = rng.randrange(3)
                if choice == 0:
                    a.type = rng.choice((onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING, onnx.AttributeProto.TENSOR,
                                         onnx.AttributeProto.INTS, onnx.AttributeProto.GRAPH, 99))
                elif choice == 1 and a.ints:
                    del a.ints[rng.randrange(len(a.ints)):]
                else:
                    a.ints.extend([rng.choice(HUGE_INTS)] * rng.randint(1, 6))
            else:
                n.attribute.append(onnx.helper.make_attribute(rng.choice(("axis", "group", "strides", "pads", "perm")),
                                                              rng.choice(([0], -1, [2**40], 0))))
        elif op == 2 and g.initializer:                     # initializer dims
            t = rng.choice(g.initializer)
            if t.dims:
                t.dims[rng.randrange(len(t.dims))] = rng.choice((0, -1, 2**20, 2**31, 2**62))
            elif rng.random() < 0.5:
                t.dims.extend([2**20, 2**20])
        elif op == 3 and g.initializer:                     # raw data truncated / emptied
            t = rng.choice(g.initializer)
            if t.raw_data:
                t.raw_data = t.raw_data[:rng.choice((len(t.raw_data) - 1, 0, len(t.raw_data) // 2))]
            else:
                del t.float_data[rng.randrange(len(t.float_data) or 1):]
        elif op == 4 and g.initializer:                     # data type
            rng.choice(g.initializer).data_type = rng.choice((0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 21, 99))
        elif op == 5:                                       # graph input / output dims
            vis = list(g.input) + list(g.output)
            dims = [d for vi in vis for d in vi.type.tensor_type.shape.dim]
            if dims:
                d = rng.choice(dims)
                if rng.random() < 0.7:
                    d.dim_value = rng.choice((0, -1, 2**31, 2**40, 10**6))
                else:
                    d.dim_param = rng.choice(("N", "", "x" * 50))
        elif op == 6:                                       # input elem type
            vis = list(g.input) + list(g.output)
            if vis:
                rng.choice(vis).type.tensor_type.elem_type = rng.choice((0, 2, 3, 6, 7, 9, 10, 11, 16, 99))
        elif op == 7 and g.initializer:                     # external data
            t = rng.choice(g.initializer)
            t.data_location = onnx.TensorProto.EXTERNAL
            t.ClearField("raw_data")
            del t.external_data[:]
            loc = rng.choice(("w.bin", "../outside.bin", "/etc/hostname", "missing.bin", "", "sub/../w.bin", "/dev/zero"))
            entries = {"location": loc}
            if rng.random() < 0.7:
                entries["offset"] = str(rng.choice((0, 1, 64, -1, 2**40, 10**18)))
            if rng.random() < 0.7:
                entries["length"] = str(rng.choice((0, 4, 64, -5, 2**40, 10**18, "abc")))
            for k, v in entries.items():
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        elif op == 8 and g.node:                            # dangling / duplicated names
            n = rng.choice(g.node)
            if n.input and rng.random() < 0.5:
                n.input[rng.randrange(len(n.input))] = rng.choice(("missing", "", g.node[0].output[0]))
            elif n.output:
                n.output[0] = rng.choice([nn.output[0] for nn in g.node if nn.output] + [g.input[0].name if g.input else "x"])
        elif op == 9 and len(g.node) >= 1:                  # a cycle: the first node reads the last's output
            if g.node[0].input and g.node[-1].output:
                g.node[0].input[0] = g.node[-1].output[0]
        elif op == 10:                                      # opset
            if m.opset_import:
                m.opset_import[0].version = rng.choice((0, 1, 6, 7, 11, 99, 10**9))
                if rng.random() < 0.2:
                    m.opset_import[0].domain = rng.choice(("ai.onnx.ml", "evil", "com.microsoft"))
        elif op == 11 and g.node:                           # op type / domain swapped
            n = rng.choice(g.node)
            if rng.random() < 0.8:
                n.op_type = rng.choice(("Conv", "Gemm", "MatMul", "Add", "Relu", "Reshape", "Transpose", "Loop", "If",
                                        "Scan", "TopK", "Resize", "Gather", "Concat", "Slice", "Pad", "Split",
                                        "QuantizeLinear", "DequantizeLinear", "ConvTranspose", "Softmax", "Nope"))
            else:
                n.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "evil"))
        elif op == 12 and g.node:                           # node removed or duplicated
            i = rng.randrange(len(g.node))
            if rng.random() < 0.5:
                del g.node[i]
            else:
                g.node.insert(i, copy.deepcopy(g.node[i]))
        elif op == 13:                                      # graph outputs / inputs dropped or duplicated
            field = rng.choice((g.output, g.input))
            if field:
                if rng.random() < 0.5:
                    del field[rng.randrange(len(field))]
                else:
                    field.append(copy.deepcopy(field[0]))
        elif op == 14:                                      # ir version
            m.ir_version = rng.choice((0, 1, 3, 99, 2**40))
        elif g.initializer:                                 # int64 initializer values to extremes
            t = rng.choice(g.initializer)
            arr = onnx.numpy_helper.to_array(t) if not t.external_data else None
            if arr is not None and arr.size and arr.dtype.kind in "iu":
                flat = arr.copy().reshape(-1)
                flat[rng.randrange(flat.size)] = rng.choice((0, -1, np.iinfo(arr.dtype).max, np.iinfo(arr.dtype).min))
                t.CopyFrom(onnx.numpy_helper.from_array(flat.reshape(arr.shape), t.name))
            elif arr is not None and arr.size and arr.dtype.kind == "f":
                flat = arr.copy().reshape(-1)
                flat[rng.randrange(flat.size)] = rng.choice(EVIL_FLOATS)
                t.CopyFrom(onnx.numpy_helper.from_array(flat.reshape(arr.shape), t.name))
    return m


# ---------------------------------------------------------------- TFLite


def mutate_tflite(data: bytes, rng: random.Random) -> bytes:
    """A mutated TFLite flatbuffer: one to three edits through the schema's object API."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl
    m = tfl.ModelT.InitFromPackedBuf(bytearray(data), 0)
    g = m.subgraphs[0]
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(13)
        t = rng.choice(g.tensors)
        o = rng.choice(g.operators) if g.operators else None
        if op == 0:                                           # tensor shape
            shape = list(t.shape if t.shape is not None else [])
            if shape and rng.random() < 0.8:
                shape[rng.randrange(len(shape))] = rng.choice((0, -1, 2**31 - 1, 2**20, 1 << 16))
            else:
                shape = rng.choice(([], [1] * 9, [2**15, 2**15, 4]))
            t.shape = np.array(shape, np.int64).astype(np.int32)
        elif op == 1:                                         # tensor type
            t.type = rng.choice((0, 1, 2, 3, 4, 6, 7, 9, 10, 16, 17, 99))
        elif op == 2:                                         # buffer index
            t.buffer = rng.choice((len(m.buffers), len(m.buffers) + 5, 2**32 - 1, 0))
        elif op == 3 and o is not None:                       # operator tensor indices
            lst = list(o.inputs if rng.random() < 0.6 else o.outputs)
            if lst:
                lst[rng.randrange(len(lst))] = rng.choice((-1, -2, len(g.tensors), 2**31 - 1, lst[0]))
            if rng.random() < 0.5:
                o.inputs = np.array(lst, np.int32)
            else:
                o.outputs = np.array(lst, np.int32)
        elif op == 4 and o is not None:                       # opcode index
            o.opcodeIndex = rng.choice((len(m.operatorCodes), 2**32 - 1, 0))
        elif op == 5:                                         # builtin code
            c = rng.choice(m.operatorCodes)
            code = rng.choice((0, 1, 3, 4, 9, 17, 22, 32, 39, 40, 67, 127, 150, 200, 255))
            c.builtinCode, c.deprecatedBuiltinCode = code, min(code, 127)
        elif op == 6 and o is not None:                       # options type swapped
            o.builtinOptionsType = rng.choice((0, 1, 2, 3, 5, 8, 9, 13, 19, 200))
        elif op == 7 and o is not None and o.builtinOptions is not None:   # option fields
            fields = [k for k, v in vars(o.builtinOptions).items() if type(v) in (int, float)]
            if fields:
                setattr(o.builtinOptions, rng.choice(fields), rng.choice((0, -1, 2, 99, 127, 2**31 - 1, -2**31)))
        elif op == 8:                                         # quantisation
            q = t.quantization or tfl.QuantizationParametersT()
            t.quantization = q
            which = rng.randrange(4)
            if which == 0:
                q.scale = np.array([rng.choice(EVIL_FLOATS)] * rng.choice((1, 1, 3)), np.float32)
            elif which == 1:
                q.zeroPoint = np.array([rng.choice((-129, 128, 300, 2**40, -2**40))], np.int64)
            elif which == 2:
                q.quantizedDimension = rng.choice((-1, 5, 99))
            else:
                q.scale, q.zeroPoint = np.zeros(0, np.float32), np.zeros(0, np.int64)
        elif op == 9:                                         # buffer data truncated / dropped
            bufs = [b for b in m.buffers if b.data is not None and len(b.data)]
            if bufs:
                b = rng.choice(bufs)
                b.data = b.data[:rng.choice((len(b.data) - 1, 0, len(b.data) // 2))]
            else:
                m.buffers.append(tfl.BufferT())
        elif op == 10:                                        # buffer offset / size (large-model form)
            b = rng.choice(m.buffers)
            b.offset, b.size = rng.choice((1, 2**40, 2**63)), rng.choice((4, 2**40, 2**63))
        elif op == 11:                                        # subgraph inputs / outputs
            lst = list(g.inputs if rng.random() < 0.5 else g.outputs)
            lst.append(rng.choice((len(g.tensors), -1, 0)))
            if rng.random() < 0.5:
                g.inputs = np.array(lst, np.int32)
            else:
                g.outputs = np.array(lst, np.int32)
        else:                                                 # operators dropped or duplicated
            if g.operators:
                i = rng.randrange(len(g.operators))
                if rng.random() < 0.5:
                    del g.operators[i]
                else:
                    g.operators.insert(i, copy.deepcopy(g.operators[i]))
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
