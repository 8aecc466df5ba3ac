"""ResNet-18 and MobileNetV2 at 224x224 (published shapes, random weights) compile and profile
on every preset; the quantised graph is built once and lowered for each architecture."""
from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import pytest

from npukit.arch import list_presets, load_arch
from npukit.codegen.context import CompileOptions
from npukit.codegen.lower import lower_program
from npukit.compiler import compile_graph, load_model
from npukit.isa import instructions as I
from npukit.models import zoo
from npukit.report.profile import build_profile
from npukit.cost.timing import simulate


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def quantised(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / f"{request.param}.onnx"
    onnx.save(getattr(zoo, request.param)(), path)
    rng = np.random.default_rng(0)
    calib = {"input": rng.standard_normal((2, 1, 3, 224, 224)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, qg, _ = compile_graph(load_model(path, None), load_arch("npu-m"), calib)
    return request.param, qg


@pytest.mark.parametrize("preset", list_presets())
def test_compiles_and_profiles_on_every_preset(quantised, preset):
    name, qg = quantised
    arch = load_arch(preset)
    prog = lower_program(qg, arch, CompileOptions(), {})
    p = build_profile(prog, arch, simulate(prog, arch))
    assert p.host_ops == []                                   # every layer runs on the NPU
    macs = sum(layer.macs for layer in p.layers)
    assert macs == p.macs and macs > 3e8                      # ResNet-18 1.8 G, MobileNetV2 0.3 G
    # nothing beats the lower bound, and the bound is the slowest engine's minimum
    assert p.total_cycles >= p.roofline_cycles >= math.ceil(p.macs / arch.macs_per_cycle)
    for layer in p.layers:
        # a layer with MACs computes on the MXU, or (depthwise) on the VPU
        assert layer.cycles >= 0 and layer.mxu_cycles + layer.vpu_cycles >= (layer.macs > 0)
    # every weight byte crosses from its region at least once (a compressed block as its stream)
    w_region = arch.placement.weights
    weights = sum(t.nbytes for t in qg.tensors.values() if t.is_const)
    saved = p.weight_bytes - p.weight_bytes_compressed
    assert 0 <= saved < p.weight_bytes
    assert p.region_bytes[w_region] >= (weights - saved) * 0.99
    # the SRAM arena stays within the SRAMs
    assert p.sram_peak_bytes <= arch.abuf_bytes + arch.wbuf_bytes + arch.acc_bytes
    assert all(isinstance(i, (I.Dma, I.Fill, I.Conv, I.DwConv, I.Requant, I.Elementwise, I.Lut, I.Pool, I.Mean))
               for i in prog.instructions)
