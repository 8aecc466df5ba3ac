"""Lossless weight codec: the stream a decompressing DMA (Dma.codec = RICE) expands into WBUF.

The block's bytes, read as int8, are zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)
and cut into groups of 32 values (the last one padded with zeros, dropped on decode). Each
group has a 4-bit mode: 0..7 = Golomb-Rice with parameter k (value u = q * 2^k + r), 8 = raw
bytes, 9 = all zero. The stream is three parts, one after the other:

  modes      one nibble per group, low nibble first          ceil(groups / 2) bytes
  remainders per group in order: 32 k-bit fields (Rice k),   4k, 32 or 0 bytes per group
             32 raw bytes (mode 8), nothing (mode 9); LSB first
  quotients  one bit stream for every Rice value in order: q ones then a zero, LSB first,
             zero-padded to a whole byte

The encoder never picks a k that leaves a quotient above Q_MAX, so a hardware decoder
handles a value per lane per cycle with a 16-bit unary window; every group's remainders are
byte-aligned and located from the modes alone. Decoding is vectorised: the quotients are the
gaps between the zeros of the unary stream.
"""
from __future__ import annotations

import numpy as np

from ..errors import BinaryError
from ..limits import UNPACKED_BYTES

GROUP = 32        # values a group: the mode nibble costs 1/8 bit a value
Q_MAX = 15
RAW, ZERO = 8, 9
RICE = 1          # Dma.codec value of this stream format (0: a plain copy)


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int16)
    return ((v << 1) ^ (v >> 15)).astype(np.uint8)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int16)
    return ((u >> 1) ^ -(u & 1)).astype(np.int8)


def _remainder_bytes(modes: np.ndarray) -> np.ndarray:
    return np.where(modes == RAW, GROUP, np.where(modes == ZERO, 0, GROUP // 8 * modes.astype(np.int64)))


def encode(data: bytes | np.ndarray) -> bytes:
    """The compressed stream of `data` (bytes, or any array: its raw bytes)."""
    raw = np.frombuffer(np.ascontiguousarray(data).tobytes() if isinstance(data, np.ndarray) else bytes(data),
                        np.uint8)
    n_groups = -(-raw.size // GROUP)
    u: np.ndarray = np.zeros(n_groups * GROUP, np.uint8)      # reshaped below
    u[:raw.size] = _zigzag(raw.view(np.int8))
    u = u.reshape(n_groups, GROUP)
    # bits of each Rice k (32 k remainder bits + the unary codes), infeasible past Q_MAX:
    # one pass per k over the values (no [groups, 32, 8] temporary)
    costs = np.empty((n_groups, 8), np.int64)
    for k in range(8):
        costs[:, k] = (u >> k).sum(axis=1, dtype=np.int32)
    costs += GROUP * np.arange(8) + GROUP
    top = u.max(axis=1)
    costs[(top[:, None] >> np.arange(8, dtype=np.uint8)) > Q_MAX] = 1 << 30
    modes = np.argmin(costs, axis=1)
    modes = np.where(costs[np.arange(n_groups), modes] >= 8 * GROUP, RAW, modes)
    modes = np.where(top == 0, ZERO, modes).astype(np.uint8)
    header = np.zeros(2 * (-(-n_groups // 2)), np.uint8)
    header[:n_groups] = modes
    parts = [(header[0::2] | (header[1::2] << 4)).tobytes()]
    sizes = _remainder_bytes(modes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    rem = np.zeros(int(sizes.sum()), np.uint8)
    for mode in np.flatnonzero(np.bincount(modes)):     # the modes used (np.unique would load numpy.ma)
        sel = np.flatnonzero(modes == mode)
        if mode == RAW:
            rem[starts[sel][:, None] + np.arange(GROUP)] = u[sel]
        elif 0 < mode < RAW:    # 8 values of `mode` bits -> `mode` bytes, through one uint64 each
            r = (u[sel] & ((1 << int(mode)) - 1)).astype(np.uint64).reshape(-1, 8)
            word = np.zeros(r.shape[0], np.uint64)
            for j in range(8):
                word |= r[:, j] << np.uint64(j * int(mode))
            packed = word.astype("<u8").view(np.uint8).reshape(sel.size, GROUP // 8, 8)[:, :, :mode].reshape(sel.size, -1)
            rem[starts[sel][:, None] + np.arange(GROUP // 8 * mode)] = packed
    parts.append(rem.tobytes())
    rice = modes < RAW
    q = (u[rice] >> modes[rice][:, None]).reshape(-1).astype(np.int64)
    unary = np.ones(int(q.sum()) + q.size, np.uint8)
    unary[np.cumsum(q + 1) - 1] = 0
    parts.append(np.packbits(unary, bitorder="little").tobytes())
    return b"".join(parts)


def decode(stream: np.ndarray, n: int) -> np.ndarray:
    """The `n` bytes (uint8) a stream expands to; BinaryError when it is not a valid stream of
    exactly that many values and exactly its own length."""
    UNPACKED_BYTES.check(n, "compressed weights: the declared decoded size", BinaryError)
    stream = np.asarray(stream, np.uint8).reshape(-1)
    n_groups = -(-n // GROUP)
    n_header = -(-n_groups // 2)
    if n < 0 or stream.size < n_header:
        raise BinaryError(f"compressed weights: {stream.size} bytes cannot hold {n} values")
    nib = np.empty(2 * n_header, np.uint8)
    nib[0::2], nib[1::2] = stream[:n_header] & 15, stream[:n_header] >> 4
    modes = nib[:n_groups]
    if (modes > ZERO).any():
        raise BinaryError(f"compressed weights: unknown group mode {int(modes.max())}")
    sizes = _remainder_bytes(modes)
    starts = n_header + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    unary_at = n_header + int(sizes.sum())
    if unary_at > stream.size:
        raise BinaryError("compressed weights: stream truncated in the remainders")
    u = np.zeros((n_groups, GROUP), np.int64)
    for mode in np.unique(modes):
        if mode == ZERO:
            continue
        width = 8 if mode == RAW else int(mode)
        sel = np.flatnonzero(modes == mode)
        if width == 0:
            continue
        blocks = stream[starts[sel][:, None] + np.arange(GROUP // 8 * width)]
        if mode == RAW:
            u[sel] = blocks
        else:
            bits: np.ndarray = np.unpackbits(blocks, axis=1, bitorder="little").reshape(sel.size, GROUP, width)
            u[sel] = bits.astype(np.int64) @ (1 << np.arange(width))
    rice = modes < RAW
    n_rice = int(rice.sum()) * GROUP
    bits = np.unpackbits(stream[unary_at:], bitorder="little")
    zeros = np.flatnonzero(bits == 0)[:n_rice]
    if zeros.size < n_rice:
        raise BinaryError("compressed weights: stream truncated in the quotients")
    q = np.diff(zeros, prepend=-1) - 1
    used = int(zeros[-1]) + 1 if n_rice else 0
    if stream.size - unary_at != -(-used // 8):
        raise BinaryError(f"compressed weights: stream of {stream.size} bytes, its codes take "
                          f"{unary_at + -(-used // 8)}")
    if q.size and q.max() > Q_MAX:
        raise BinaryError(f"compressed weights: quotient {int(q.max())} above {Q_MAX}")
    k = np.repeat(modes[rice].astype(np.int64), GROUP).reshape(-1, GROUP)
    u[rice] += q.reshape(-1, GROUP) << k
    if u.max(initial=0) > 255:
        raise BinaryError("compressed weights: a value beyond 8 bits")
    return _unzigzag(u.reshape(-1)[:n]).view(np.uint8)
