"""The 16-bit instruction fields: encoding (extension words only when used, so int8 programs
encode exactly as before), decoding, disassembly, and their semantics against the kernels."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.errors import BinaryError
from npukit.ir.graph import ConvAttrs
from npukit.isa import instructions as I
from npukit.isa.encoding import decode, disassemble, encode
from npukit.kernels import kernels_mxu as kx
from npukit.kernels import kernels_wide as kw
from npukit.isa.immediates import params_to_ints
from npukit.sim.semantics import Machine, execute

GEO = dict(src=0, in_h=1, in_w=20, c_stride=1, c_off=0, c_len=1, wgt=0, dst=0, out_h=1, out_w=4, k=3,
           kernel=(1, 8), stride=(1, 4), dilation=(1, 1), in_dil=(1, 1), pad_t=0, pad_l=0, zp=0,
           accumulate=0, dataflow=0)


def test_int8_conv_encodes_without_extension_words():
    words = np.frombuffer(encode([I.Conv(0, (), **GEO)]), "<i8")
    payload = sum(1 if a == 1 else a for _, a in I.field_layout(I.Conv))
    assert len(words) == 3 + payload and words[0] == I.OPCODES.index(I.Conv)


def test_extension_fields_round_trip():
    prog = [I.Conv(0, (), **GEO), I.Conv(1, (0,), **{**GEO, "in_bytes": 2}),
            I.Magnitude(2, (1,), 16, 1, 129, 4, 2048, (16384, 14, -128, -128, 127))]
    words = np.frombuffer(encode(prog), "<i8")
    assert decode(encode(prog)) == prog
    second = 3 + sum(1 if a == 1 else a for _, a in I.field_layout(I.Conv))
    assert words[second] >> 16 == 1                  # one extension word follows its payload
    text = disassemble(prog, [])
    assert "in_bytes=2" in text and text.count("in_bytes") == 1 and "MAGNITUDE" in text


def test_unknown_extension_count_is_rejected():
    data = bytearray(encode([I.Conv(0, (), **{**GEO, "in_bytes": 2})]))
    data[2] = 5                                        # claims 5 extension words: Conv has 1
    with pytest.raises(BinaryError, match="unknown opcode"):
        decode(bytes(data))


def _machine():
    return Machine({I.ABUF: 4096, I.WBUF: 4096, I.ACC: 4096}, [])


def test_conv16_then_requant_mode2_equal_the_16x8_kernel():
    rng = np.random.default_rng(0)
    x = rng.integers(-32768, 32768, (1, 1, 20, 1)).astype(np.int16)
    w = rng.integers(-127, 128, (3, 1, 8, 1)).astype(np.int8)
    bias = np.array([5_000_000, -7, 0], np.int64)
    p = kx.prepare_conv(3e-5, np.array([0.01, 0.02, 0.005]), 2e-4, 0, 0, None, np.int16)
    m = _machine()
    m.view(I.ABUF, 0, x.shape, np.int16)[...] = x
    m.view(I.WBUF, 0, w.shape)[...] = w
    m.view(I.WBUF, 1024, (3, 3), np.int64)[...] = np.stack([bias, p.multiplier, p.shift])
    execute(m, I.Conv(0, (), **{**GEO, "src": 0, "in_bytes": 2}))
    execute(m, I.Requant(0, (), src=0, n_pix=4, k=3, params=1024, dst=512, dst_pix_stride=3, dst_c_off=0,
                         out_zp=0, act_min=-32768, act_max=32767, mode=2))
    want = kw.conv2d_16x8(x, w, bias, ConvAttrs(stride=(1, 4)), p)
    np.testing.assert_array_equal(m.view(I.ABUF, 512, (1, 1, 4, 3), np.int16), want)


def test_conv16_rejects_a_zero_point_and_odd_widths():
    m = _machine()
    for bad in ({"in_bytes": 2, "zp": 3}, {"in_bytes": 4}):
        with pytest.raises(BinaryError, match="CONV"):
            execute(m, I.Conv(0, (), **{**GEO, **bad}))
    with pytest.raises(BinaryError, match="mode"):
        execute(m, I.Requant(0, (), 0, 1, 1, 0, 0, 1, 0, 0, -128, 127, 7))


def test_magnitude_instruction_equals_the_kernel():
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32768, (3, 2, 5, 4)).astype(np.int16)      # [outer, re|im, c, inner]
    p = kw.prepare_magnitude(1e-4, 0.05, -128)
    m = _machine()
    m.view(I.ABUF, 64, x.shape, np.int16)[...] = x
    execute(m, I.Magnitude(0, (), 64, 3, 5, 4, 1024, params_to_ints(p)))
    np.testing.assert_array_equal(m.view(I.ABUF, 1024, (3, 5, 4)), kw.magnitude(x[:, 0], x[:, 1], p))
    with pytest.raises(BinaryError):
        execute(m, I.Magnitude(0, (), 4000, 3, 5, 4, 1024, params_to_ints(p)))


def test_a_shift_outside_the_requantisation_range_is_a_binary_error():
    """The compiled requantisation reads its parameter block at run time: a shift a compiler
    never writes (40) stops the run with a BinaryError naming the instruction."""
    m = _machine()
    m.view(I.WBUF, 0, (3, 2), np.int32)[...] = [[0, 0], [1 << 30, 1 << 30], [0, 40]]
    with pytest.raises(BinaryError, match="REQUANT: .*shift"):
        execute(m, I.Requant(0, (), src=0, n_pix=4, k=2, params=0, dst=512, dst_pix_stride=2, dst_c_off=0,
                             out_zp=0, act_min=-128, act_max=127, mode=0))
    with pytest.raises(BinaryError, match="DWCONV: .*shift"):
        execute(m, I.DwConv(0, (), src=1024, in_h=3, in_w=3, c=2, wgt=64, params=0, dst=2048, out_h=3, out_w=3,
                            mult=1, kernel=(3, 3), stride=(1, 1), dilation=(1, 1), pad_t=1, pad_l=1, zp=0,
                            out_zp=0, act_min=-128, act_max=127, engine=0))
