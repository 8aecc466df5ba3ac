"""The operands the simulator binds once (sim/constants.py) are what the instructions read when
they run: every folded Conv weight matrix equals the WBUF block at that Conv in an unfolded run,
every folded stream decodes to what the DMA delivers; a program that writes its weights'
source gets none folded and still computes the right outputs."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from npukit.arch import load_arch
from npukit.codegen.context import CompileOptions
from npukit.isa import instructions as I
from npukit.sim.constants import known_operands
from npukit.sim.functional import Simulator

from cases import conv_chain_model
from test_sim_vs_reference import _compile
from test_weight_compression import SparseWeights


def _sim(prog, arch, fold: bool) -> Simulator:
    return Simulator(prog, {I.ABUF: arch.abuf_bytes, I.WBUF: arch.wbuf_bytes, I.ACC: arch.acc_bytes},
                     fold_constants=fold)


@pytest.fixture(scope="module", params=["auto", "never"])
def compiled(request, tmp_path_factory):
    rng = SparseWeights(5)
    data = conv_chain_model(rng, c=6, k1=24, k2=16, h=12, w=10, kernel=(3, 3), stride=(1, 1), pads=[1, 1, 1, 1],
                            groups2=1)
    calib = {"x": np.random.default_rng(1).standard_normal((4, 1, 6, 12, 10)).astype(np.float32)}
    return _compile(tmp_path_factory.mktemp("c"), data, "npu-s", CompileOptions(compress_weights=request.param), calib)


def test_folded_operands_are_what_the_instructions_read(compiled):
    prog, arch = compiled.program, load_arch("npu-s")
    known = known_operands(prog, arch.wbuf_bytes)
    convs = [i for i, ins in enumerate(prog.instructions) if isinstance(ins, I.Conv)]
    assert convs and all(i in known for i in convs)          # every weight block comes from flash
    sim = _sim(prog, arch, fold=False)
    m, plan = sim._bind()
    m.clear_sram()
    x = np.random.default_rng(2).integers(-128, 128, prog.inputs[0].shape).astype(np.int8)
    sim._write_inputs(m, {prog.inputs[0].name: x})
    for i, ins in enumerate(prog.instructions):
        if isinstance(ins, I.Conv):
            depth = ins.kernel[0] * ins.kernel[1] * ins.c_len
            block = m.view(I.WBUF, ins.wgt, (ins.k, depth))
            np.testing.assert_array_equal(known[i], block.T, err_msg=f"conv {i}")
        plan.run(plan.instructions[i])
        if isinstance(ins, I.Dma) and ins.codec:
            dst = m.strided(ins.dst_space, ins.dst, ins.shape, ins.dst_strides, ins.elem)
            np.testing.assert_array_equal(known[i].reshape(dst.shape), dst, err_msg=f"stream {i}")


def test_a_program_that_writes_its_weight_source_folds_none(compiled):
    """Prepend DMAs that copy other weights (kept past the image's end) over every weight
    source: nothing is folded, and the outputs are those of the program with those weights."""
    prog, arch = compiled.program, load_arch("npu-s")
    loads = [d for d in prog.instructions if isinstance(d, I.Dma) and d.dst_space == I.WBUF and d.src_space >= I.REGION0]
    region = next(i for i, r in enumerate(prog.regions) if r.space == loads[0].src_space)
    image = np.frombuffer(prog.regions[region].image, np.uint8)
    blocks = [(c.wgt, c.wgt + c.k * c.kernel[0] * c.kernel[1] * c.c_len) for c in prog.instructions
              if isinstance(c, I.Conv)]
    changed, prologue = image.copy(), []
    for d in loads:
        lo, hi = (d.src, d.src + d.packed) if d.codec else (d.src, d.src + int(np.prod(d.shape)) * d.elem)
        n = int(np.prod(d.shape)) * d.elem
        if not d.codec and any(b0 <= d.dst and d.dst + n <= b1 for b0, b1 in blocks):   # raw weights: others
            changed[lo:hi] = (-image[lo:hi].view(np.int8).clip(-127)).view(np.uint8)
        prologue.append(I.Dma(0, (), d.src_space, image.size + lo, (0, 0, 0, 0), d.src_space, lo, (0, 0, 0, 0),
                              (1, 1, 1, 1), hi - lo))
    regions = list(prog.regions)
    regions[region] = dataclasses.replace(regions[region], image=image.tobytes() + changed.tobytes())
    writes = dataclasses.replace(prog, regions=regions, instructions=prologue + list(prog.instructions))
    want_regions = list(prog.regions)
    want_regions[region] = dataclasses.replace(want_regions[region], image=changed.tobytes())
    want_prog = dataclasses.replace(prog, regions=want_regions)
    assert not any(isinstance(writes.instructions[i], I.Conv) for i in known_operands(writes, arch.wbuf_bytes))
    assert (changed != image).any() or all(d.codec for d in loads)
    x = {prog.inputs[0].name: np.random.default_rng(3).integers(-128, 128, prog.inputs[0].shape).astype(np.int8)}
    got, want = _sim(writes, arch, True).run(x), _sim(want_prog, arch, True).run(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
