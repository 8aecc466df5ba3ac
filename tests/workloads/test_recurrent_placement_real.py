"""ddddocr-old's bidirectional 512-hidden LSTM (two integer LSTMs, 24 steps): on npu-s its two
1 MB weight matrices would stream from the 0.4 GB/s flash every step, so the placement's
estimates put both directions on the host with the figures in the reason; on npu-m (DRAM, a
larger MXU) the NPU estimate is lower and they stay on the NPU; host="never" keeps them there
on npu-s too (no host operator to refuse)."""
from __future__ import annotations

import re
import math

import pytest

from npukit.arch.loader import load_arch
from npukit.compiler import load_model, placements, refuse_host
from npukit.testing.fixtures import real_model


@pytest.fixture(scope="module")
def graph():
    return load_model(real_model("ddddocr-old"), {"input1": (1, 1, 64, 192)})


def _lstms(graph, arch, options=None):
    return [p for p in placements(graph, load_arch(arch), options) if p.op == "lstm"]


def test_ddddocr_lstms_go_to_the_host_on_npu_s_and_stay_on_npu_m(graph):
    on_s, on_m = _lstms(graph, "npu-s"), _lstms(graph, "npu-m")
    assert [p.target for p in on_s] == ["host", "host"] and [p.target for p in on_m] == ["npu", "npu"]
    a = load_arch("npu-s")
    for p in on_s:
        host, npu = map(int, re.fullmatch(r"host estimate (\d+) cycles < NPU estimate (\d+) cycles", p.reason).groups())
        # the host's charge: 4 gates x (512 + 512) x 512 x 24 steps MACs, in NPU clock cycles
        macs = 4 * 1024 * 512 * 24
        assert host == math.ceil(macs * a.host.cycles_per_element["conv"] * a.clock_mhz / a.host.cpu_mhz)
        # the NPU's lower bound: the 1 MB recurrent matrix read from the weights' region every step
        assert npu > 24 * 4 * 512 * 512 / a.region_bytes_per_cycle(a.placement.weights)


def test_host_never_keeps_them_on_the_npu(graph):
    from npukit.codegen.context import CompileOptions
    found = _lstms(graph, "npu-s", CompileOptions(recurrent_host="never"))
    assert [p.target for p in found] == ["npu", "npu"]
    refuse_host(found)
