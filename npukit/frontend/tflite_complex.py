"""TFLite complex tensors (an RFFT2D's spectrum) as float tensors holding the real part in
the first half of their last axis and the imaginary part in the second.

RFFT2D of one row (tf.signal.stft's form: fft_length [1, N]) becomes one FULLY_CONNECTED by
the DFT's cosine and negated sine rows; reshapes that keep the last axis (RESHAPE, SQUEEZE,
EXPAND_DIMS) reshape the pair; CAST to float32 and REAL take the real half, IMAG the
imaginary half (SLICE), COMPLEX_ABS is MAGNITUDE. Any other use of a complex tensor is
refused, naming the operator."""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import UnsupportedOpError
from ..ir.graph import FcAttrs, MagnitudeAttrs, Op, SliceAttrs
from . import tflite_read as rd

_COMPLEX = (tfl.TensorType.COMPLEX64, tfl.TensorType.COMPLEX128)
_RESHAPES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def is_complex(cv, i: int) -> bool:
    return i >= 0 and cv.sg.tensors[i].type in _COMPLEX


def convert_complex(cv, op: tfl.OperatorT) -> bool:
    """Convert `op` when it makes or reads a complex tensor (True); leave it otherwise."""
    ins, outs = [int(i) for i in op.inputs], [int(i) for i in op.outputs]
    if not any(is_complex(cv, i) for i in ins + outs):
        return False
    kind = cv.op_label
    if kind == "RFFT2D":
        _rfft(cv, ins, outs[0])
    elif kind in _RESHAPES and is_complex(cv, ins[0]) and is_complex(cv, outs[0]):
        shape = rd.shape(cv.sg.tensors[outs[0]])
        if not shape or shape[-1] != rd.shape(cv.sg.tensors[ins[0]])[-1]:
            raise UnsupportedOpError(f"{cv.where()}: a complex {kind} that changes the last axis is not supported")
        cv.complex[outs[0]] = cv.reshape(cv.complex[ins[0]], (*shape[:-1], 2 * shape[-1]), suffix="/pair")
    elif kind in ("CAST", "REAL", "IMAG", "COMPLEX_ABS") and is_complex(cv, ins[0]) and not is_complex(cv, outs[0]):
        if rd.np_dtype(cv.sg.tensors[outs[0]], outs[0]) != np.float32:
            raise UnsupportedOpError(f"{cv.where()}: {kind} of a complex tensor to a non-float type")
        pair, out = cv.complex[ins[0]], cv.name(outs[0])
        shape = cv.tensors[pair].shape
        if kind == "COMPLEX_ABS":
            cv.emit(Op.MAGNITUDE, [pair], out, MagnitudeAttrs(len(shape) - 1))
        else:
            half = shape[-1] // 2
            lo = half if kind == "IMAG" else 0
            cv.emit(Op.SLICE, [pair], out, SliceAttrs((0,) * (len(shape) - 1) + (lo,), (*shape[:-1], lo + half),
                                                      (1,) * len(shape)))
    else:
        raise UnsupportedOpError(f"{cv.where()}: complex tensors are supported only from RFFT2D through "
                                 f"reshapes to CAST, REAL, IMAG or COMPLEX_ABS, not in {kind}")
    return True


def _rfft(cv, ins: list[int], out: int) -> None:
    """RFFT2D of rows [..., 1, N] with fft_length [1, L]: X[k] = sum_n x[n] e^(-2 pi i k n / L)
    for k <= L / 2, the input cropped or zero-padded to L, as x @ [cos | -sin]."""
    x, xs = cv.name(ins[0]), cv.shape(ins[0])
    fft = cv.need_const(ins[1], "RFFT2D's fft_length").reshape(-1)
    if len(xs) < 2 or xs[-2] != 1 or fft.size != 2 or int(fft[0]) != 1 or int(fft[1]) < 1:
        raise UnsupportedOpError(f"{cv.where()}: RFFT2D runs on the NPU over rows [..., 1, N] with fft_length "
                                 f"[1, L] (a 1-D transform), not input {list(xs)} and fft_length {fft.tolist()}")
    length, n = int(fft[1]), xs[-1]
    angle = 2 * np.pi * np.outer(np.arange(length // 2 + 1), np.arange(min(n, length))) / length
    basis = np.zeros((2 * (length // 2 + 1), n))
    basis[:, :min(n, length)] = np.concatenate([np.cos(angle), -np.sin(angle)])
    name = rd.tensor_name(cv.sg.tensors[out], out)
    weights = cv.fresh(f"{name}/dft_basis", basis.shape, x, basis.astype(np.float32))
    rows = cv.reshape(x, (int(np.prod(xs[:-1])), n), suffix="/rows")
    y = cv.fresh(f"{name}/pair_rows", (cv.tensors[rows].shape[0], basis.shape[0]), x)
    cv.emit(Op.FULLY_CONNECTED, [rows, weights], y, FcAttrs(None))
    cv.complex[out] = cv.reshape(y, (*xs[:-1], basis.shape[0]), suffix="/pair")
