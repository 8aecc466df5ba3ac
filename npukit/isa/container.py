"""The .npub container: a header, a table of named sections, and the section payloads.

Layout (little-endian):
  header   56 B  magic b"NPUB" | u16 major | u16 minor | 32 B arch fingerprint (sha256)
                 | u64 file size | u32 section count | u32 crc32 of header + table
  table    48 B per section: 24 B name (ASCII, NUL-padded) | u64 offset | u64 length
                 | u32 crc32 of payload | u32 reserved (0)
  payloads each at a 16-byte aligned offset, in table order, zero padding between them;
           the file ends exactly at the end of the last payload.
The JSON metadata is the section "meta". The reader checks every byte before use (header and
table by their CRC, payloads by theirs, padding must be zero) and never evaluates anything.
"""
from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from npukit.errors import BinaryError

MAGIC = b"NPUB"
FORMAT_MAJOR = 2
FORMAT_MINOR = 1
META_SECTION = "meta"
MAX_SECTIONS = 1024
ALIGN = 16

_HEADER = struct.Struct("<4sHH32sQII")
_ENTRY = struct.Struct("<24sQQII")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,24}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SectionEntry:
    name: str
    offset: int
    length: int
    crc32: int


@dataclass(frozen=True)
class Header:
    major: int
    minor: int
    arch_fingerprint: str  # hex sha256, or "" when the binary names no arch
    file_size: int
    sections: tuple[SectionEntry, ...]


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _fingerprint_bytes(meta: Mapping[str, Any]) -> bytes:
    fp = meta.get("arch_fingerprint", "")
    if fp == "":
        return bytes(32)
    if not isinstance(fp, str) or not _HEX64.match(fp):
        raise BinaryError("meta 'arch_fingerprint' must be 64 lowercase hex digits (a sha256)")
    return bytes.fromhex(fp)


def pack(sections: Mapping[str, bytes], meta: Mapping[str, Any]) -> bytes:
    """Build a .npub image. `meta` must be JSON data; its "arch_fingerprint" (if any) also goes
    into the header."""
    if not isinstance(meta, Mapping):
        raise BinaryError("meta must be a dict of JSON data")
    try:
        meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise BinaryError(f"meta is not JSON data: {exc}") from None
    named: list[tuple[str, bytes]] = []
    for name, payload in sections.items():
        if not isinstance(name, str) or not _NAME.match(name) or name == META_SECTION:
            raise BinaryError(f"bad section name {name!r} (1-24 of A-Z a-z 0-9 _ . -, not 'meta')")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise BinaryError(f"section {name!r} must be bytes, not {type(payload).__name__}")
        named.append((name, bytes(payload)))
    named.append((META_SECTION, meta_bytes))
    if len(named) > MAX_SECTIONS:
        raise BinaryError(f"too many sections ({len(named)} > {MAX_SECTIONS})")

    body_start = _align(_HEADER.size + _ENTRY.size * len(named))
    entries, body = [], bytearray()
    for name, payload in named:
        body += bytes(_align(len(body)) - len(body))  # zero padding to the next aligned offset
        entries.append(_ENTRY.pack(name.encode(), body_start + len(body), len(payload),
                                   zlib.crc32(payload), 0))
        body += payload
    table = b"".join(entries)
    head = _HEADER.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR, _fingerprint_bytes(meta),
                        body_start + len(body), len(named), 0)
    head = head[:-4] + struct.pack("<I", zlib.crc32(head + table))
    return head + table + bytes(body_start - len(head) - len(table)) + bytes(body)


def read_header(data: bytes) -> Header:
    """Parse and check the header and section table (not the payloads)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BinaryError(f"not an npukit binary (got {type(data).__name__}, not bytes)")
    data = bytes(data)
    size = len(data)
    if size < 4 or data[:4] != MAGIC:
        raise BinaryError("not an npukit binary (bad magic)")
    if size < 8:
        raise BinaryError(f"truncated: header needs {_HEADER.size} bytes, file has {size}")
    major, minor = struct.unpack_from("<HH", data, 4)
    if major > FORMAT_MAJOR:
        raise BinaryError(f"format version {major}.{minor} is newer than this npukit "
                          f"({FORMAT_MAJOR}.x)")
    if major < FORMAT_MAJOR:
        raise BinaryError(f"format version {major}.{minor} is older than this npukit reads "
                          f"({FORMAT_MAJOR}.x)")
    if size < _HEADER.size:
        raise BinaryError(f"truncated: header needs {_HEADER.size} bytes, file has {size}")
    _, _, _, fp, file_size, count, crc = _HEADER.unpack_from(data, 0)
    if not 1 <= count <= MAX_SECTIONS:
        raise BinaryError(f"corrupt header: section count {count} (must be 1..{MAX_SECTIONS})")
    table_end = _HEADER.size + _ENTRY.size * count
    if size < table_end:
        raise BinaryError(f"truncated: section table ends at byte {table_end} beyond file size {size}")
    if zlib.crc32(data[: _HEADER.size - 4] + bytes(4) + data[_HEADER.size:table_end]) != crc:
        raise BinaryError("checksum mismatch in header or section table")

    entries: list[SectionEntry] = []
    prev_end = table_end
    for i in range(count):
        raw_name, offset, length, sec_crc, reserved = _ENTRY.unpack_from(data, _HEADER.size + i * _ENTRY.size)
        name = _decode_name(raw_name, i)
        if reserved != 0 or any(e.name == name for e in entries):
            raise BinaryError(f"corrupt section table entry {i} ({name!r})")
        if offset < prev_end or offset % ALIGN:
            raise BinaryError(f"corrupt section table: section {name!r} at offset {offset} "
                              f"overlaps or is misaligned")
        end = offset + length
        if end > size:
            raise BinaryError(f"truncated: section {name!r} ends at byte {end} beyond file size {size}")
        if any(data[prev_end:offset]):
            raise BinaryError(f"corrupt padding before section {name!r}")
        entries.append(SectionEntry(name, offset, length, sec_crc))
        prev_end = end
    if file_size != size or prev_end != size:
        raise BinaryError(f"file is {size} bytes but its header says {file_size} "
                          f"and its last section ends at {prev_end}")
    fingerprint = "" if fp == bytes(32) else fp.hex()
    return Header(major, minor, fingerprint, file_size, tuple(entries))


def _decode_name(raw: bytes, index: int) -> str:
    stripped = raw.rstrip(b"\0")
    try:
        name = stripped.decode("ascii")
    except UnicodeDecodeError:
        name = ""
    if not _NAME.match(name):
        raise BinaryError(f"corrupt section table: entry {index} has an invalid name {raw!r}")
    return name


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token}")


def unpack(data: bytes, expect_fingerprint: str | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Check and split a .npub image into (sections, meta). With `expect_fingerprint`, refuse
    a binary compiled for another arch."""
    header = read_header(data)
    data = bytes(data)
    sections: dict[str, bytes] = {}
    for e in header.sections:
        payload = data[e.offset:e.offset + e.length]
        if zlib.crc32(payload) != e.crc32:
            raise BinaryError(f"checksum mismatch in section {e.name!r}")
        sections[e.name] = payload
    if META_SECTION not in sections:
        raise BinaryError("corrupt binary: no 'meta' section")
    try:
        meta = json.loads(sections.pop(META_SECTION).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BinaryError(f"corrupt 'meta' section: {exc}") from None
    if not isinstance(meta, dict):
        raise BinaryError("corrupt 'meta' section: not a JSON object")
    if meta.get("arch_fingerprint", "") != header.arch_fingerprint:
        raise BinaryError("corrupt binary: header and meta disagree on the arch fingerprint")
    if expect_fingerprint is not None and header.arch_fingerprint != expect_fingerprint:
        raise BinaryError(f"binary was compiled for another architecture (fingerprint "
                          f"{header.arch_fingerprint[:12] or 'none'}, expected {expect_fingerprint[:12]})")
    return sections, meta


def save(path: str | Path, sections: Mapping[str, bytes], meta: Mapping[str, Any]) -> None:
    image = pack(sections, meta)
    try:
        Path(path).write_bytes(image)
    except OSError as exc:
        raise BinaryError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def load(path: str | Path, expect_fingerprint: str | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BinaryError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return unpack(data, expect_fingerprint)
