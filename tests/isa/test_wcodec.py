"""The weight codec and the decompressing DMA: round trips, a hand-worked stream, corrupt
streams (BinaryError, never another exception), the Dma extension fields' encoding."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.errors import BinaryError
from npukit.isa import encoding, wcodec
from npukit.isa import instructions as I
from npukit.sim.semantics import Machine, bind

int8s = st.lists(st.integers(-128, 127), max_size=300).map(lambda v: np.asarray(v, np.int8))
edges = st.lists(st.sampled_from([-128, 127, 0, -1, 1, 64, -64]), max_size=100).map(lambda v: np.asarray(v, np.int8))
laplace = st.tuples(st.integers(0, 2**16), st.integers(0, 700), st.floats(0.1, 60)).map(
    lambda a: np.clip(np.round(np.random.default_rng(a[0]).laplace(0, a[2], a[1])), -128, 127).astype(np.int8))


@pytest.fixture(autouse=True)
def _no_memo(monkeypatch):
    """Every test here decodes with the decoder itself, not the encoder's memo."""
    monkeypatch.setattr(wcodec, "MEMO_BYTES", 0)
    wcodec.forget()


def test_memo_gives_what_the_decoder_gives(monkeypatch):
    rng = np.random.default_rng(0)
    blocks = [np.clip(np.round(rng.laplace(0, s, n)), -128, 127).astype(np.int8) for s, n in ((3, 500), (40, 97))]
    monkeypatch.setattr(wcodec, "MEMO_BYTES", 1 << 20)
    streams = [np.frombuffer(wcodec.encode(b), np.uint8) for b in blocks]
    remembered = [wcodec.decode(s, b.size) for s, b in zip(streams, blocks)]
    remembered[0][0] ^= 1                           # a copy: the memo is not changed through it
    remembered[0][0] ^= 1
    wcodec.forget()
    for s, b, got in zip(streams, blocks, remembered):
        np.testing.assert_array_equal(got, wcodec.decode(s, b.size))
        np.testing.assert_array_equal(got.view(np.int8), b)
    with pytest.raises(BinaryError):                # a size the stream does not hold: decoded, refused
        wcodec.encode(blocks[0])
        wcodec.decode(streams[0], blocks[0].size + 64)


def roundtrip(values: np.ndarray) -> bytes:
    stream = wcodec.encode(values)
    back = wcodec.decode(np.frombuffer(stream, np.uint8), values.size)
    np.testing.assert_array_equal(back.view(np.int8), values)
    return stream


@settings(max_examples=200, deadline=None)
@given(values=st.one_of(int8s, edges, laplace))
def test_round_trip(values):
    stream = roundtrip(values)
    groups = -(-values.size // wcodec.GROUP)
    # never longer than the modes plus raw groups
    assert len(stream) <= -(-groups // 2) + wcodec.GROUP * groups


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(st.one_of(int8s, edges, laplace), max_size=12))
def test_blocks_coded_together_are_each_coded_alone(blocks):
    """encode_many: each block's stream is the one it has alone (which the decoder turns back
    into the block), whatever blocks stand beside it."""
    raws = [b.tobytes() for b in blocks] + [b.tobytes() for b in blocks[:2]]      # repeats too
    streams = wcodec.encode_many(raws)
    assert streams == [roundtrip(np.frombuffer(r, np.int8)) for r in raws]


@settings(max_examples=200, deadline=None)
@given(values=st.one_of(int8s, edges, laplace))
def test_encoded_size_is_the_streams_length(values):
    assert wcodec.encoded_size(values.tobytes()) == len(wcodec.encode(values))


@pytest.mark.parametrize("n", [1, 31, 32, 33, 64, 1000])
@pytest.mark.parametrize("value", [0, -128, 127, 5])
def test_constant_blocks(n, value):
    stream = roundtrip(np.full(n, value, np.int8))
    if value == 0:     # all-zero groups are their mode nibble alone
        groups = (n + 31) // 32
        assert len(stream) == (groups + 1) // 2


def test_hand_worked_stream():
    """32 ones: zigzag 2 each; Rice k=0 and k=1 both take 96 bits, the first (k=0) wins:
    the mode byte 0x00, no remainders, then '110' 32 times, LSB first."""
    assert wcodec.encode(np.ones(32, np.int8)) == bytes([0x00] + [0xDB, 0xB6, 0x6D] * 4)
    # one raw group (mode 8) then one zero group (mode 9): nibbles 8 | 9 << 4, 32 zigzag bytes
    raw = np.array([127, -128] * 16 + [0] * 32, np.int8)
    assert wcodec.encode(raw) == bytes([0x98] + [254, 255] * 16)


def _brute_mode(group: list[int]) -> int:
    """A group's mode from the format's definition, value by value: the Rice k of fewest bits
    (32 k remainder bits + q + 1 unary bits a value; none with a quotient above Q_MAX; the
    smallest k on a tie), raw when that is 256 bits or more, zero when every value is."""
    u = [2 * v if v >= 0 else -2 * v - 1 for v in group]      # zigzag
    if not any(u):
        return wcodec.ZERO
    costs = {k: 32 * k + sum((x >> k) + 1 for x in u) for k in range(8) if max(u) >> k <= wcodec.Q_MAX}
    k = min(costs, key=lambda j: (costs[j], j))
    return wcodec.RAW if costs[k] >= 8 * 32 else k


@settings(max_examples=100, deadline=None)
@given(values=st.one_of(int8s, edges, laplace))
def test_modes_follow_the_definition(values):
    padded = np.zeros(-(-values.size // 32) * 32, np.int8)
    padded[:values.size] = values
    stream = wcodec.encode(values)
    nibbles = [b >> s & 15 for b in stream[:-(-padded.size // 64)] for s in (0, 4)]
    want = [_brute_mode(padded[i:i + 32].tolist()) for i in range(0, padded.size, 32)]
    assert nibbles[:len(want)] == want


def test_trained_like_weights_shrink():
    """Laplacian weights of scale 10 (entropy 5.76 bits): within 5% of the entropy bound."""
    w = np.clip(np.round(np.random.default_rng(0).laplace(0, 10, 1 << 16)), -128, 127).astype(np.int8)
    _, counts = np.unique(w, return_counts=True)
    p = counts / w.size
    entropy_bytes = -(p * np.log2(p)).sum() * w.size / 8
    assert len(roundtrip(w)) < 1.05 * entropy_bytes


MESSAGES = {"truncate": "stream", "extend": "its codes take", "mode": "unknown group mode",
            "quotient": "quotient 16 above 15", "beyond8": "beyond 8 bits"}


@pytest.mark.parametrize("corrupt", ["truncate", "extend", "mode", "quotient", "beyond8"])
def test_corrupt_stream_is_a_binary_error(corrupt):
    w = np.random.default_rng(1).laplace(0, 4, 64).round().clip(-128, 127).astype(np.int8)
    s = bytearray(wcodec.encode(w))
    if corrupt == "truncate":
        s = s[:-1]
    elif corrupt == "extend":
        s += b"\0"
    elif corrupt == "mode":
        s[0] = (s[0] & 0xF0) | 12
    elif corrupt == "quotient":     # one group (k=0): 16 ones then 32 zeros, a first q of 16 > Q_MAX
        s = bytearray([0x00, 0xFF, 0xFF, 0, 0, 0, 0])
        w = w[:32]
    else:                           # k = 7, a remainder of 127 plus a quotient of 2: 383 > 255
        s = bytearray([0x07, 0x7F] + [0] * 27 + [0b011, 0, 0, 0, 0])
        w = w[:32]
    with pytest.raises(BinaryError, match=MESSAGES[corrupt]):
        wcodec.decode(np.frombuffer(bytes(s), np.uint8), w.size)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 200), flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
       cut=st.integers(-3, 3))
def test_mutated_streams_decode_or_raise(seed, n, flips, cut):
    w = np.random.default_rng(seed).laplace(0, 6, n).round().clip(-128, 127).astype(np.int8)
    s = bytearray(wcodec.encode(w))
    for f in flips:
        if s:
            s[f % len(s)] ^= 1 << (f % 8)
    s = s[:len(s) + cut] if cut < 0 else s + bytes(cut)
    try:
        out = wcodec.decode(np.frombuffer(bytes(s), np.uint8), n)
    except BinaryError:
        return
    assert out.shape == (n,) and out.dtype == np.uint8


def _dma(**kw):
    return I.Dma(0, (), I.REGION0, 0, (0, 0, 0, 0), I.WBUF, 32, (0, 0, 0, 0), (1, 1, 1, 1), 48, **kw)


def test_dma_extension_fields_encode():
    plain = _dma()
    words = np.frombuffer(encoding.encode([plain]), "<i8")
    assert words[0] == I.OPCODES.index(I.Dma)               # no extension words: unchanged binaries
    packed = _dma(codec=wcodec.RICE, packed=20)
    words2 = np.frombuffer(encoding.encode([packed]), "<i8")
    assert words2[0] >> 16 == 2 and list(words2[-2:]) == [1, 20] and len(words2) == len(words) + 2
    assert encoding.decode(encoding.encode([plain, packed])) == [plain, packed]
    assert "codec=1 packed=20" in encoding.disassemble([packed], ["flash"])


def _machine(region: np.ndarray) -> Machine:
    return Machine({I.ABUF: 64, I.WBUF: 128, I.ACC: 64}, [region])


def test_decompressing_dma_executes_and_follows_the_source():
    w = np.random.default_rng(2).laplace(0, 3, 48).round().clip(-128, 127).astype(np.int8)
    s = np.frombuffer(wcodec.encode(w), np.uint8)
    region = np.zeros(256, np.uint8)
    region[:s.size] = s
    m = _machine(region)
    run = bind(m, _dma(codec=wcodec.RICE, packed=s.size))
    run()
    np.testing.assert_array_equal(m.mem[I.WBUF][32:80].view(np.int8), w)
    w2 = -w                                # a new stream of the same length: decoded again
    s2 = np.frombuffer(wcodec.encode(w2), np.uint8)
    if s2.size == s.size:
        region[:s.size] = s2
        run()
        np.testing.assert_array_equal(m.mem[I.WBUF][32:80].view(np.int8), w2)
    region[0] = 0xFF                       # corrupt modes: the next call fails cleanly
    with pytest.raises(BinaryError):
        run()


@pytest.mark.parametrize("bad", [{"codec": 2, "packed": 4}, {"codec": 1, "packed": 1 << 20},
                                 {"codec": 1, "packed": -1}])
def test_bad_decompressing_dma_is_a_binary_error(bad):
    with pytest.raises(BinaryError):
        bind(_machine(np.zeros(64, np.uint8)), _dma(**bad))
    with pytest.raises(BinaryError):
        bind(_machine(np.zeros(64, np.uint8)),
             I.Dma(0, (), I.REGION0, 0, (0, 0, 0, 1), I.WBUF, 0, (0,) * 4, (1, 1, 1, 2), 8, codec=1, packed=4))
