"""The compiled interpreter of micro-op tables (sim/microops.py): rows [start, stop) in one call.

Each row's kind selects the work; requantisation and depthwise tiles are the kernels of
sim/jit.py themselves, called on views built from the row's addresses. `at[0]` holds the
row being run, so an error raised inside (a shift outside [-31, 31]) can be traced to its
instruction. Compiled with cache=True, like sim/jit.py; numba loads when a program is first
bound, not on import.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import jit
from .jit import depthwise_requant, requantize
from . import microops
from .microops import ADD32, COPY, DWCONV, FILL, PAIR, REQUANT


def _pointer_intrinsic(dtype):
    @intrinsic
    def pointer(typingctx, addr):
        sig = types.CPointer(dtype)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(types.CPointer(dtype)))
        return sig, codegen
    return pointer


@intrinsic
def _memcpy(typingctx, dst, src, n):
    """memcpy(dst, src, n) on raw addresses (llvm.memcpy: the library's vectorised copy)."""
    sig = types.void(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = context.get_value_type(types.CPointer(types.uint8))
        cgutils.raw_memcpy(builder, builder.inttoptr(args[0], ptr), builder.inttoptr(args[1], ptr), args[2], 1)
    return sig, codegen


_u8 = _pointer_intrinsic(types.uint8)
_i8 = _pointer_intrinsic(types.int8)
_i32 = _pointer_intrinsic(types.int32)
_u64 = _pointer_intrinsic(types.uint64)
_jit = numba.njit(cache=True, nogil=True)


@_jit
def _xor(src, dst, n, bits):
    """dst[j] = src[j] ^ bits for n bytes, eight at a time."""
    s, t = numba.carray(_u8(src), n), numba.carray(_u8(dst), n)
    j = 0
    if n >= 8:
        wide = np.uint64(bits) * np.uint64(0x0101010101010101)
        s8, t8 = numba.carray(_u64(src), n // 8), numba.carray(_u64(dst), n // 8)
        for q in range(n // 8):
            t8[q] = s8[q] ^ wide
        j = n // 8 * 8
    for q in range(j, n):
        t[q] = s[q] ^ bits


@_jit
def _copy(op):
    src, dst, run, xor = op[1], op[2], op[15], np.uint8(op[16])
    for a in range(op[3]):
        for b in range(op[4]):
            for c in range(op[5]):
                for d in range(op[6]):
                    s = src + a * op[7] + b * op[8] + c * op[9] + d * op[10]
                    t = dst + a * op[11] + b * op[12] + c * op[13] + d * op[14]
                    if xor:
                        _xor(s, t, run, xor)
                    else:
                        _memcpy(t, s, run)


@_jit
def _requant(op):
    n, k, stride = op[2], op[3], op[6]
    acc = numba.carray(_i32(op[1]), (n, k))
    params = numba.carray(_i32(op[4]), (3, k))
    out = numba.carray(_i8(op[5]), (n, stride))[:, :k]
    requantize(acc, params[0], params[1], params[2], op[7], op[8], op[9], out)


@_jit
def _depthwise(op):
    g = op[5:23]
    ih, iw, c, cm, kh, kw, oh, ow = g[0], g[1], g[2], g[3], g[4], g[5], g[12], g[13]
    k = c * cm
    x = numba.carray(_i8(op[1]), (ih, iw, c))
    w = numba.carray(_i8(op[2]), (kh, kw, k))
    params = numba.carray(_i32(op[3]), (3, k))
    out = numba.carray(_i8(op[4]), (oh * ow, k))
    depthwise_requant(x, w, params[0], params[1], params[2], g, out)


@_jit
def _pair(op):
    a, b, lut, dst, rows, cols = op[1], op[2], numba.carray(_i8(op[3]), 1 << 16), op[4], op[5], op[6]
    for i in range(rows):
        x = numba.carray(_u8(a + i * op[7]), cols)
        y = numba.carray(_i8(dst + i * op[10]), cols)
        row = b + i * op[8]
        for j in range(cols):
            y[j] = lut[np.int64(x[j]) << 8 | np.int64(_u8(row + j * op[9])[0])]


@_jit
def run_rows(ops, start, stop, at):
    """Run rows [start, stop) of the int64 table `ops` in order; at[0] = the row running."""
    for i in range(start, stop):
        at[0] = i
        op = ops[i]
        kind = op[0]
        if kind == COPY:
            _copy(op)
        elif kind == FILL:
            numba.carray(_u8(op[1]), op[2])[:] = np.uint8(op[3])
        elif kind == ADD32:
            src, dst = numba.carray(_i32(op[1]), op[3]), numba.carray(_i32(op[2]), op[3])
            for j in range(op[3]):
                dst[j] += src[j]
        elif kind == REQUANT:
            _requant(op)
        elif kind == DWCONV:
            _depthwise(op)
        elif kind == PAIR:
            _pair(op)
        else:
            raise ValueError("unknown micro-op")


def _refresh_cache() -> None:
    """numba's on-disk cache of a function is invalidated only by its own file changing, but
    this module's compiled code includes the kernels of sim/jit.py and the micro-op kinds of
    microops.py: when either source differs from the one the cache was built from, the cached
    entries are dropped and compiled again."""
    deps = hashlib.sha256(b"".join(Path(path).read_bytes() for path in (jit.__file__, microops.__file__) if path)).hexdigest()
    try:
        stamp = Path(run_rows._cache._cache_path) / "interpreter.deps"    # type: ignore[attr-defined]  # numba's private cache
        if stamp.exists() and stamp.read_text() == deps:
            return
        for f in (run_rows, _requant, _depthwise, _copy, _xor, _pair):
            f._cache.flush()        # type: ignore[union-attr]  # numba's private cache
        stamp.write_text(deps)
    except (AttributeError, OSError):       # no cache location (or another numba): nothing stale to keep
        pass


@functools.lru_cache(maxsize=None)
def entry():
    """run_rows' compiled entry point for (int64 [n, w] table, int64, int64, int64 [1]), called
    without numba's per-call type dispatch."""
    _refresh_cache()
    table, at = np.zeros((1, 24), np.int64), np.zeros(1, np.int64)
    return run_rows.compile((numba.typeof(table), numba.int64, numba.int64, numba.typeof(at)))
