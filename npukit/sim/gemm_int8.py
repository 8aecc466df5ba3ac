"""Exact int8 matrix products for the simulator's MXU, by onnxruntime's MatMulInteger.

MatMulInteger (MLAS) multiplies uint8 activations by int8 weights into int32 with the
activation zero point subtracted: Y = sum((A - a_zp) * B). The simulator feeds it the
instruction's int8 codes offset by 128 (x ^ 0x80 as uint8) with a_zp = zp + 128, so Y is the
MXU's accumulator sum((x - zp) * w) itself, with no depth limit below 2^31 / (255 * 128).

Exactness depends on the CPU: on x86 without VNNI, MLAS's u8s8 kernels use VPMADDUBSW, whose
16-bit pair sums saturate (onnxruntime's quantisation guide says so). `backend()` therefore
probes the product on operands that saturate such a kernel (255 * -128 pairs) at several
shapes before any use, and returns None when any is inexact: the simulator then keeps its
float32 kernels (plans.DenseConv), also exact, only slower.

Operands are bound by pointer (IO binding, no copies): a bound call reads the buffers' current
contents, so a prepared kernel binds once and calls many times.
"""
from __future__ import annotations

import functools

import numpy as np

MAX_DEPTH = ((1 << 31) - 1) // (255 * 128)      # every partial sum fits in int32

# The serialised ONNX model (IR 8, opset 13) of one MatMulInteger node "mxu": inputs A uint8
# [M, K], B int8 [K, N], a_zp uint8 scalar; output Y int32 [M, N]. Stored as bytes so that a
# simulation needs onnxruntime only, not the onnx package (tests rebuild it with onnx.helper).
MATMUL_INTEGER_MODEL = (
    b'\x08\x08:z\n\x1e\n\x01A\n\x01B\n\x04a_zp\x12\x01Y"\rMatMulInteger\x12\x03mxuZ\x15\n\x01A\x12\x10\n'
    b'\x0e\x08\x02\x12\n\n\x03\x12\x01M\n\x03\x12\x01KZ\x15\n\x01B\x12\x10\n\x0e\x08\x03\x12\n\n\x03\x12\x01K\n'
    b'\x03\x12\x01NZ\x0e\n\x04a_zp\x12\x06\n\x04\x08\x02\x12\x00b\x15\n\x01Y\x12\x10\n\x0e\x08\x06\x12\n\n\x03'
    b'\x12\x01M\n\x03\x12\x01NB\x04\n\x00\x10\r')


class Int8Gemm:
    """A MatMulInteger session with symbolic shapes: uint8 A [M, K], int8 B [K, N], uint8 a_zp."""

    def __init__(self, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")   # no busy waiting between calls
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(MATMUL_INTEGER_MODEL, opts, providers=["CPUExecutionProvider"])

    def bind(self, a: np.ndarray, b: np.ndarray, a_zp: np.ndarray, out: np.ndarray) -> "BoundGemm":
        return BoundGemm(self.session, a, b, a_zp, out)


class BoundGemm:
    """One product on fixed buffers (kept alive here); call it to compute out = (a - a_zp) @ b.
    `rebind_b` points it at another weight matrix of the same shape."""

    def __init__(self, session, a: np.ndarray, b: np.ndarray, a_zp: np.ndarray, out: np.ndarray):
        for name, arr, dtype in (("A", a, np.uint8), ("B", b, np.int8), ("a_zp", a_zp, np.uint8), ("Y", out, np.int32)):
            if arr.dtype != dtype or not arr.flags.c_contiguous:
                raise ValueError(f"MatMulInteger operand {name}: {arr.dtype} {arr.shape} must be C-contiguous {np.dtype(dtype)}")
        (m, k), (k2, n) = a.shape, b.shape
        if k2 != k or out.shape != (m, n) or a_zp.shape != ():
            raise ValueError(f"MatMulInteger shapes {a.shape} @ {b.shape} -> {out.shape}")
        self._keep = [a, b, a_zp, out]
        self.io = session.io_binding()
        self.io.bind_input("A", "cpu", 0, np.uint8, [m, k], a.ctypes.data)
        self.io.bind_input("a_zp", "cpu", 0, np.uint8, [], a_zp.ctypes.data)
        self.io.bind_output("Y", "cpu", 0, np.int32, [m, n], out.ctypes.data)
        self.rebind_b(b)
        self._run, self._binding = session._sess.run_with_iobinding, self.io._iobinding
        from onnxruntime import RunOptions
        self._opts = RunOptions()

    def rebind_b(self, b: np.ndarray) -> None:
        if b.dtype != np.int8 or not b.flags.c_contiguous or b.shape != self._keep[1].shape:
            raise ValueError(f"MatMulInteger B rebound to {b.dtype} {b.shape}")
        self._keep[1] = b
        self.io.bind_input("B", "cpu", 0, np.int8, list(b.shape), b.ctypes.data)

    def __call__(self) -> None:
        self._run(self._binding, self._opts)


def _exact(gemm: Int8Gemm) -> bool:
    """Whether the session's products are exact on operands that would saturate 16-bit pair
    sums (255 * -128 + 255 * -128, and 255 * 127 pairs), at GEMV, small and blocked shapes."""
    rng = np.random.default_rng(0)
    for m, k, n in ((1, 64, 16), (7, 27, 5), (49, 1100, 16), (230, 64, 32), (300, 300, 64)):
        a = rng.choice(np.array([0, 1, 254, 255], np.uint8), (m, k))
        a[:, :2] = 255
        b = rng.choice(np.array([-128, -127, 126, 127], np.int8), (k, n))
        b[:2, 0], b[:2, -1] = -128, 127
        for zp in (0, 128):
            out = np.empty((m, n), np.int32)
            gemm.bind(a, b, np.array(zp, np.uint8), out)()
            if not np.array_equal(out, (a.astype(np.int64) - zp) @ b.astype(np.int64)):
                return False
    return True


@functools.lru_cache(maxsize=None)
def backend(threads: int = 1) -> Int8Gemm | None:
    """The exact int8 GEMM for `threads` intra-op threads, or None when onnxruntime is missing
    or its int8 products are not exact on this CPU (then the float32 kernels run)."""
    try:
        gemm = Int8Gemm(threads)
    except ImportError:
        return None
    return gemm if _exact(gemm) else None
