"""The .npub container: round trip, documented layout, and every kind of damage -> BinaryError."""
import json
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npukit.errors import BinaryError
from npukit.isa import container
from npukit.isa.container import load, pack, read_header, save, unpack

FP = "0123456789abcdef" * 4

names = st.from_regex(r"[A-Za-z0-9_.\-]{1,24}", fullmatch=True).filter(lambda n: n != "meta")
sections_st = st.dictionaries(names, st.binary(max_size=64), max_size=5)
json_leaf = st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=8) | \
    st.floats(allow_nan=False, allow_infinity=False)
json_st = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) |
                       st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=10)
meta_st = st.dictionaries(st.text(max_size=8).filter(lambda k: k != "arch_fingerprint"),
                          json_st, max_size=4)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sample() -> bytes:
    return pack({"code": b"\x01\x02\x03", "consts": bytes(range(40)), "empty": b""},
                {"model": "m", "layers": [1, 2], "arch_fingerprint": FP})


@SETTINGS
@given(sections_st, meta_st, st.booleans())
def test_round_trip(sections, meta, with_fp):
    if with_fp:
        meta = {**meta, "arch_fingerprint": FP}
    got_sections, got_meta = unpack(pack(sections, meta))
    assert got_sections == sections
    assert got_meta == meta


def test_layout_matches_the_documented_format():
    data = sample()
    magic, major, minor, fp, size, count, crc = struct.unpack_from("<4sHH32sQII", data, 0)
    assert (magic, major, minor, fp.hex(), size) == (b"NPUB", 2, 1, FP, len(data))
    assert count == 4  # three sections + meta
    table = data[56:56 + 48 * count]
    assert zlib.crc32(data[:52] + bytes(4) + table) == crc
    seen = {}
    for i in range(count):
        name, off, length, sec_crc, reserved = struct.unpack_from("<24sQQII", table, 48 * i)
        payload = data[off:off + length]
        assert off % 16 == 0 and reserved == 0 and zlib.crc32(payload) == sec_crc
        seen[name.rstrip(b"\0").decode()] = payload
    assert seen["consts"] == bytes(range(40))
    assert json.loads(seen["meta"]) == {"model": "m", "layers": [1, 2], "arch_fingerprint": FP}


def test_every_truncation_raises():
    data = sample()
    for n in range(len(data)):
        with pytest.raises(BinaryError):
            unpack(data[:n])


def test_truncated_section_message_names_section():
    data = sample()
    with pytest.raises(BinaryError, match=r"truncated: section 'meta' ends at byte \d+ beyond file size"):
        unpack(data[:-1])


def test_every_single_byte_flip_raises():
    data = sample()
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[i] ^= flip
            with pytest.raises(BinaryError):
                unpack(bytes(damaged))


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=6))
def test_random_flips_raise_or_round_trip(flips):
    data = sample()
    damaged = bytearray(data)
    for pos, x in flips:
        damaged[pos % len(data)] ^= x
    try:
        got = unpack(bytes(damaged))
    except BinaryError:
        return
    assert got == unpack(data)  # flips that cancel out


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_garbage_raises_binary_error_only(garbage, with_prefix):
    if with_prefix:  # get past the magic and version checks
        garbage = b"NPUB" + struct.pack("<HH", 2, 0) + garbage
    with pytest.raises(BinaryError):
        unpack(garbage)


def test_version_and_magic_messages():
    data = bytearray(sample())
    with pytest.raises(BinaryError, match=r"not an npukit binary \(bad magic\)"):
        unpack(b"PK\x03\x04" + bytes(data[4:]))
    data[4:8] = struct.pack("<HH", 9, 0)
    with pytest.raises(BinaryError, match=r"format version 9\.0 is newer than this npukit \(2\.x\)"):
        unpack(bytes(data))
    data[4:8] = struct.pack("<HH", 1, 0)    # version 1: host segments as named Python records
    with pytest.raises(BinaryError, match=r"format version 1\.0 is older than this npukit reads \(2\.x\)"):
        unpack(bytes(data))
    with pytest.raises(BinaryError, match="bad magic"):
        unpack(b"")
    with pytest.raises(BinaryError):
        unpack("NPUB")  # type: ignore[arg-type]


def test_fingerprint_checks():
    data = sample()
    assert read_header(data).arch_fingerprint == FP
    assert unpack(data, expect_fingerprint=FP)[1]["arch_fingerprint"] == FP
    with pytest.raises(BinaryError, match="another architecture"):
        unpack(data, expect_fingerprint="f" * 64)
    assert read_header(pack({}, {})).arch_fingerprint == ""
    with pytest.raises(BinaryError, match="arch_fingerprint"):
        pack({}, {"arch_fingerprint": "xyz"})


@pytest.mark.parametrize("sections, meta", [
    ({"meta": b""}, {}),
    ({"": b""}, {}),
    ({"a" * 25: b""}, {}),
    ({"bad name": b""}, {}),
    ({"code": "text"}, {}),
    ({}, {"x": float("nan")}),
    ({}, {"x": object()}),
    ({}, [1, 2]),
])
def test_pack_rejects_bad_input(sections, meta):
    with pytest.raises(BinaryError):
        pack(sections, meta)


def test_too_many_sections_rejected():
    with pytest.raises(BinaryError, match="too many sections"):
        pack({f"s{i}": b"" for i in range(container.MAX_SECTIONS)}, {})


def test_save_and_load(tmp_path):
    path = tmp_path / "m.npub"
    save(path, {"code": b"\x00\xff"}, {"k": 1})
    assert load(path) == ({"code": b"\x00\xff"}, {"k": 1})
    with pytest.raises(BinaryError, match="cannot read"):
        load(tmp_path / "missing.npub")
    with pytest.raises(BinaryError, match="cannot write"):
        save(tmp_path / "no" / "dir.npub", {}, {})
