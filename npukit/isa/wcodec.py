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

import threading
from collections import OrderedDict

import numpy as np

from ..errors import BinaryError
from ..limits import UNPACKED_BYTES

GROUP = 32        # values a group: the mode nibble costs 1/8 bit a value
Q_MAX = 15
RAW, ZERO = 8, 9
RICE = 1          # Dma.codec value of this stream format (0: a plain copy)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int16)
    return ((u >> 1) ^ -(u & 1)).astype(np.int8)


def _remainder_bytes(modes: np.ndarray) -> np.ndarray:
    return np.where(modes == RAW, GROUP, np.where(modes == ZERO, 0, GROUP // 8 * modes.astype(np.int64)))


# The encoder works on the values eight to a little-endian 64-bit word (a byte lane each), a
# group's 32 values four words: one word operation does eight values' work.
_BYTES = np.uint64(0x0101010101010101)
_NIBBLE_LOW_BITS = np.uint64(0x1111111111111111)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_ROWS = np.arange(GROUP) < _remainder_bytes(np.arange(ZERO + 1, dtype=np.uint8))[:, None]    # by mode


def _zigzag_words(w: np.ndarray) -> np.ndarray:
    """In place, each byte lane's int8 v -> (v << 1) ^ (v >> 7) as uint8 (0, -1, 1, -2, ... ->
    0, 1, 2, 3, ...): the lane shifted left within itself, xor 0xFF where v was negative."""
    sign = (w >> np.uint64(7)) & _BYTES
    sign *= np.uint64(0xFF)
    w <<= np.uint64(1)
    w &= ~_BYTES
    w ^= sign
    return w


def _shifted_sums(words: np.ndarray) -> np.ndarray:
    """[8, groups] int32 of [groups, 4] words: row k is the sum over each group's 32 values of
    (u >> k), from the count c_b of values with bit b set: S_7 = c_7, S_k = c_k + 2 S_(k+1).
    Bits b and b + 4 are counted together, a nibble each, over the group's four words (a nibble
    then holds at most 4), then each nibble set summed across its word (at most 32)."""
    cols = np.ascontiguousarray(words.T)                  # [4, groups]: word j of every group together
    n = words.shape[0]
    sums = np.empty((8, n), np.int32)
    x = np.empty_like(cols)
    total = np.empty(n, np.uint64)
    part = np.empty(n, np.uint64)
    for b in range(4):
        np.right_shift(cols, np.uint64(b), out=x)
        x &= _NIBBLE_LOW_BITS
        np.add(x[0], x[1], out=total)
        total += x[2]
        total += x[3]
        np.bitwise_and(total, _LOW_NIBBLES, out=part)     # bit b's counts, a byte lane each
        part *= _BYTES
        part >>= np.uint64(56)
        sums[b] = part
        total >>= np.uint64(4)                            # bit b + 4's
        total &= _LOW_NIBBLES
        total *= _BYTES
        total >>= np.uint64(56)
        sums[b + 4] = total
    for k in range(6, -1, -1):
        sums[k] += 2 * sums[k + 1]
    return sums


_RICE_BITS = GROUP * np.arange(1, 9, dtype=np.int32)[:, None]    # mode bits and k bits per value
_MIN_RUNNING = 1024       # groups from which a running minimum beats argmin over [8, groups]


def _modes(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's mode: the Rice k of fewest bits (the first on a tie; infeasible where a
    quotient would pass Q_MAX, i.e. some value reaches 2^(k+4)), RAW where no k beats 8 bits a
    value, ZERO for an all-zero group; and each group's unary bits (0 unless Rice)."""
    sums = _shifted_sums(words)
    n = words.shape[0]
    if n < _MIN_RUNNING:      # cost of k: unary bits (sum of quotients + 1 each) + mode and remainder bits
        cost = sums + _RICE_BITS
        cost[:4][sums[4:] > 0] = 1 << 30
        k = cost.argmin(axis=0).astype(np.uint8)
        cols = np.arange(n)
        best, quotients = cost[k, cols], sums[k, cols]
    else:                     # the same by a running minimum, k = 7 down to 0 (a smaller k taking a tie)
        best = sums[7] + 8 * GROUP
        k = np.full(n, 7, np.uint8)
        quotients = sums[7].copy()
        for kk in range(6, -1, -1):
            cost = sums[kk] + (kk + 1) * GROUP
            if kk < 4:
                cost[sums[kk + 4] > 0] = 1 << 30
            better = cost <= best
            np.copyto(best, cost, where=better)
            k[better] = kk
            np.copyto(quotients, sums[kk], where=better)
    mode = k
    mode[best >= 8 * GROUP] = RAW
    mode[sums[0] == 0] = ZERO
    unary = quotients.astype(np.int64) + GROUP
    unary[mode >= RAW] = 0
    return mode, unary


def encode(data: bytes | np.ndarray) -> bytes:
    """The compressed stream of `data` (bytes, or any array: its raw bytes)."""
    raw = np.ascontiguousarray(data).tobytes() if isinstance(data, np.ndarray) else bytes(data)
    return encode_many([raw])[0]


def encoded_size(data: bytes) -> int:
    """`len(encode(data))`, from the groups' modes alone: the mode nibbles, each group's
    remainder bytes and the unary bits, whole bytes (no stream is built)."""
    raw = np.frombuffer(data, np.uint8)
    n_groups = -(-raw.size // GROUP)
    flat = np.zeros(n_groups * GROUP, np.uint8)
    flat[:raw.size] = raw
    modes, unary_bits = _modes(_zigzag_words(flat.view("<u8")).reshape(n_groups, GROUP // 8))
    return -(-n_groups // 2) + int(_remainder_bytes(modes).sum()) + -(-int(unary_bits.sum()) // 8)


def encode_many(blocks: list[bytes]) -> list[bytes]:
    """`[encode(b) for b in blocks]`, coded in one vectorised pass over all their groups (a
    block's groups are its own: each block is padded to whole groups, and every group's mode,
    remainders and unary codes depend on that group alone)."""
    counts = np.array([-(-len(b) // GROUP) for b in blocks], np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])
    n_groups = int(first[-1])
    flat = np.zeros(n_groups * GROUP, np.uint8)
    for b, g0 in zip(blocks, first.tolist()):
        flat[g0 * GROUP:g0 * GROUP + len(b)] = np.frombuffer(b, np.uint8)
    words = _zigzag_words(flat.view("<u8")).reshape(n_groups, GROUP // 8)   # zigzag(0) = 0: the padding stays
    modes, unary_bits = _modes(words)
    rem, rem_at = _remainders(words, modes)
    unary, unary_at = _unary(words, modes, unary_bits)
    out = []
    for raw, g0, g1 in zip(blocks, first[:-1].tolist(), first[1:].tolist()):
        header = np.zeros(2 * (-(-(g1 - g0) // 2)), np.uint8)
        header[:g1 - g0] = modes[g0:g1]
        stream = b"".join([(header[0::2] | (header[1::2] << 4)).tobytes(), rem[rem_at[g0]:rem_at[g1]].tobytes(),
                           np.packbits(unary[unary_at[g0]:unary_at[g1]], bitorder="little").tobytes()])
        remember(stream, raw)
        out.append(stream)
    return out


# Streams this process encoded, with their bytes (oldest dropped first past MEMO_BYTES): the
# simulator decoding a program just compiled gets each block back as a copy. The codec is
# lossless, so that is what decoding would give (tests/isa/test_wcodec.py).
MEMO_BYTES = 64 << 20
_memo: OrderedDict[bytes, bytes] = OrderedDict()
_memo_bytes = [0]
_memo_lock = threading.Lock()


def forget() -> None:
    """Empty the memo: the next decode of any stream runs the decoder."""
    with _memo_lock:
        _memo.clear()
        _memo_bytes[0] = 0


def remember(stream: bytes, raw: bytes) -> None:
    """Keep `stream` -> `raw` as the newest entry (`encode` does; so does a caller that took a
    stream it encoded earlier from its own store)."""
    with _memo_lock:
        if stream in _memo:
            _memo.move_to_end(stream)
            return
        if len(stream) + len(raw) > MEMO_BYTES:
            return
        _memo[stream] = raw
        _memo_bytes[0] += len(stream) + len(raw)
        while _memo_bytes[0] > MEMO_BYTES:
            s, r = _memo.popitem(last=False)
            _memo_bytes[0] -= len(s) + len(r)


def _remainders(words: np.ndarray, modes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every group's remainder bytes, one group after the other, and where each group's start
    (one more entry: the end)."""
    n_groups = words.shape[0]
    sizes = _remainder_bytes(modes)
    # each group's remainder bytes at the start of its row, then the rows' used bytes in order
    rows = np.empty((n_groups, GROUP), np.uint8)
    for mode in np.flatnonzero(np.bincount(modes)):     # the modes used (np.unique would load numpy.ma)
        sel = np.flatnonzero(modes == mode)
        if mode == RAW:
            rows[sel] = words[sel].view(np.uint8)
        elif 0 < mode < RAW:    # 8 values of `mode` bits -> `mode` bytes, through one uint64 each
            m = int(mode)
            word = _pack(words[sel].reshape(-1), m)
            word = word.astype("<u8", copy=False)      # (lane i: byte i, whatever the host's byte order)
            rows[sel, :GROUP // 8 * m] = word.view(np.uint8).reshape(-1, 8)[:, :m].reshape(sel.size, -1)
    return rows[np.take(_ROWS, modes, axis=0)], np.concatenate([[0], np.cumsum(sizes)])


def _unary(words: np.ndarray, modes: np.ndarray, unary_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unary code bits of every Rice group, one group after the other (q ones, then a zero,
    per value), and where each group's start (one more entry: the end)."""
    rice = modes < RAW
    q = words.view(np.uint8)[rice] >> modes[rice][:, None]
    total = int(unary_bits.sum())
    # each code: q ones, then a zero; its zero's place, in int32 where that fits (half the memory)
    zeros = q.reshape(-1).astype(np.int32 if total < 2**31 else np.int64)
    zeros += 1
    np.cumsum(zeros, out=zeros)
    zeros -= 1
    unary = np.ones(total, np.uint8)
    unary[zeros] = 0
    return unary, np.concatenate([[0], np.cumsum(unary_bits)])


_HALVES = [(np.uint64(lo), np.uint64(bits)) for lo, bits in
           ((0x00FF00FF00FF00FF, 8), (0x0000FFFF0000FFFF, 16), (0x00000000FFFFFFFF, 32))]


def _pack(w: np.ndarray, m: int) -> np.ndarray:
    """Each uint64 of 8 values (a byte each, low byte first) -> the low m bits of each value
    side by side from bit 0 (8m bits): adjacent lanes are joined pairwise, then in fours, then
    all eight, each step closing the gap above the low lane's bits."""
    x = w & np.uint64(((1 << m) - 1) * 0x0101010101010101)
    width = m
    for lo, bits in _HALVES:    # lanes of `bits` bits, each holding `width` bits from bit 0
        x = (x & lo) | ((x & ~lo) >> np.uint64(bits - width))
        width *= 2
    return x


def decode(stream: np.ndarray, n: int) -> np.ndarray:
    """The `n` bytes (uint8) a stream expands to; BinaryError when it is not a valid stream of
    exactly that many values and exactly its own length."""
    UNPACKED_BYTES.check(n, "compressed weights: the declared decoded size", BinaryError)
    stream = np.asarray(stream, np.uint8).reshape(-1)
    raw = _memo.get(stream.tobytes())
    if raw is not None and len(raw) == n:
        return np.frombuffer(raw, np.uint8).copy()
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
    for mode in np.flatnonzero(np.bincount(modes)):
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
