"""Compressed weights end to end: the simulator still equals the integer reference, the
image and the flash traffic shrink on a trained model, and the timing reads the streams."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import npukit
from npukit.arch import load_arch
from npukit.codegen.context import CompileOptions
from npukit.errors import InputError
from npukit.isa import instructions as I
from npukit.isa import wcodec
from npukit.cost.timing import simulate

from cases import conv_chain_model, conv_model
from test_sim_vs_reference import _compile, assert_sim_equals_reference, conv_cases, small_arch

KWS = Path(__file__).resolve().parents[2] / "examples" / "voice" / "kws_dscnn.onnx"


class SparseWeights:
    """conv_model's weights drawn sparse and peaked (as pruned trained weights are), so the
    codec has something to remove."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def standard_normal(self, shape):
        return self.rng.laplace(0, 0.3, shape) * (self.rng.random(shape) < 0.5)


def packed_loads(prog) -> list[I.Dma]:
    return [i for i in prog.program.instructions if isinstance(i, I.Dma) and i.codec]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_cases(), seed=st.integers(0, 2**16), abuf=st.sampled_from([1, 4]),
       rows=st.sampled_from([0, 1, 3]), double=st.booleans())
def test_conv_sim_equals_reference_with_compressed_weights(tmp_path, case, seed, abuf, rows, double):
    rng = np.random.default_rng(seed)
    data = conv_model(SparseWeights(seed), **case)
    arch = small_arch(abuf, 1, 1, 4, 4, "auto")
    opts = CompileOptions(max_tile_rows=rows, double_buffer=double, compress_weights="auto")
    shape = (1, case["c"], case["h"], case["w"])
    prog = _compile(tmp_path, data, arch, opts, {"x": rng.standard_normal((4,) + shape).astype(np.float32)})
    loads = packed_loads(prog)
    event(f"compressed loads: {bool(loads)}")
    for d in loads:                      # every compressed load reads a stream shorter than its block
        assert d.dst_space == I.WBUF and 0 < d.packed < d.elem
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal(shape).astype(np.float32)}])


def test_chain_with_compressed_weights_equals_never(tmp_path):
    rng = np.random.default_rng(3)
    data = conv_chain_model(SparseWeights(3), c=8, k1=16, k2=16, h=10, w=10, kernel=(3, 3), stride=(1, 1),
                            pads=[1, 1, 1, 1], groups2=1)
    calib = {"x": rng.standard_normal((4, 1, 8, 10, 10)).astype(np.float32)}
    auto = _compile(tmp_path, data, "npu-s", CompileOptions(compress_weights="auto"), calib)
    never = _compile(tmp_path, data, "npu-s", CompileOptions(compress_weights="never"), calib)
    assert packed_loads(auto) and not packed_loads(never)
    feeds = [{"x": rng.standard_normal((1, 8, 10, 10)).astype(np.float32)}]
    assert_sim_equals_reference(auto, feeds)


@pytest.fixture(scope="module")
def kws():
    rng = np.random.default_rng(0)
    calib = {"mfcc": rng.standard_normal((8, 1, 1, 49, 10)).astype(np.float32)}
    out = {}
    for mode in ("auto", "never"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[mode] = npukit.compile(KWS, "u55-256", {"mfcc": (1, 1, 49, 10)}, calibration=calib,
                                       options=CompileOptions(compress_weights=mode), sqnr=False)
    return out


def test_trained_model_image_and_flash_traffic_shrink(kws):
    auto, never = kws["auto"], kws["never"]
    loads = packed_loads(auto)
    assert loads and not packed_loads(never)
    # the streams in the image decode to the blocks the uncompressed program loads
    image = np.frombuffer(next(r.image for r in auto.program.regions if r.name == "flash"), np.uint8)
    base = next(r for r in auto.program.regions if r.name == "flash").space
    for d in loads:
        assert d.src_space == base
        block = wcodec.decode(image[d.src:d.src + d.packed], d.elem)
        assert block.size == d.elem > d.packed
    pa, pn = auto.profile(), never.profile()
    saved = sum(d.elem - d.packed for d in {d.src: d for d in loads}.values())
    assert pn.weight_bytes == pn.weight_bytes_compressed == pa.weight_bytes
    assert pa.weight_bytes - pa.weight_bytes_compressed == saved > 0
    assert pa.image_bytes["flash"] < pn.image_bytes["flash"]
    # each load (a block may load more than once) reads its stream, not its block
    assert pn.region_bytes["flash"] - pa.region_bytes["flash"] == sum(d.elem - d.packed for d in loads)
    assert pa.total_cycles < pn.total_cycles


def test_trained_model_sim_equals_reference(kws):
    rng = np.random.default_rng(5)
    assert_sim_equals_reference(kws["auto"], [{"mfcc": rng.standard_normal((1, 1, 49, 10)).astype(np.float32)}])


def test_decoder_rate_bounds_a_compressed_load(kws):
    """The weight decoder expands a block at decode_bytes_per_cycle: at a tenth of a byte a
    cycle the decoder, not the flash port, paces the loads and the program slows."""
    prog, arch = kws["auto"].program, load_arch("u55-256")
    slow = arch.replace({"dma.decode_bytes_per_cycle": 0.1})
    t_fast, t_slow = simulate(prog, arch), simulate(prog, slow)
    first = next(i for i, ins in enumerate(prog.instructions) if isinstance(ins, I.Dma) and ins.codec)
    d = prog.instructions[first]
    assert t_slow.end[first] - t_slow.start[first] >= d.elem / 0.1
    assert t_slow.total_cycles > t_fast.total_cycles
    # the same bytes are read whatever the decoder's rate
    assert sum(c.region_bytes["flash"] for c in t_slow.counts) == sum(c.region_bytes["flash"] for c in t_fast.counts)


def test_auto_leaves_weights_plain_where_the_decoder_cannot_keep_up(tmp_path):
    """npu-dc's HBM delivers 600 B a cycle, above the decoder's default 32: auto stores
    weights plain there (a compressed load would be slower)."""
    data = conv_model(SparseWeights(1), c=8, k=16, h=8, w=8, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                      pads=[1, 1, 1, 1], groups=1)
    assert not packed_loads(_compile(tmp_path, data, "npu-dc", CompileOptions(), None))
    assert packed_loads(_compile(tmp_path, data, "npu-s", CompileOptions(), None))


def test_unknown_option_value_is_an_input_error(tmp_path):
    data = conv_model(np.random.default_rng(0), c=2, k=2, h=4, w=4, kernel=(1, 1), stride=(1, 1),
                      dilation=(1, 1), pads=[0, 0, 0, 0], groups=1)
    with pytest.raises(InputError, match="compress_weights"):
        _compile(tmp_path, data, "npu-s", CompileOptions(compress_weights="always"), None)
