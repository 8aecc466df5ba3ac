"""An LSTM / GRU the NPU fits runs where the closed-form estimate is lower: on the NPU, the weight
bytes read from their region (once when resident in WBUF, the recurrent matrix every step when
streamed) over its bandwidth plus the MXU's GEMMs and the cells' VPU work; on the host, the CPU's
cycles per MAC. host="never" still forces the NPU."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import npukit
from npukit.cost import costs
from npukit.testing.gru_models import gru_feeds, gru_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import small_arch  # noqa: E402

STEPS, BATCH, N_IN, HIDDEN = 20, 1, 16, 32      # 3 x 32 gate channels, linear_before_reset 1


def _estimates(arch, streamed: bool) -> tuple[int, int]:
    """(NPU, host) cycles worked by hand for this GRU: input matrix 96 x 16 B, recurrent 96 x 32 B,
    the parameter block (6 int32 rows of 96 channels, 2304 B) resident, all steps in one chunk."""
    g, m = 3 * HIDDEN, arch.mxu
    w_in, w_rec = g * N_IN, g * HIDDEN
    traffic = w_in + (STEPS * w_rec if streamed else w_rec)
    mxu = costs.mxu_gemm_cycles(BATCH * STEPS, g, N_IN, m.rows, m.cols, costs.WS, m.fold_overlap) + \
        STEPS * costs.mxu_gemm_cycles(BATCH, g, HIDDEN, m.rows, m.cols, costs.WS, m.fold_overlap)
    vpu = costs.vpu_cycles(28 * BATCH * STEPS * HIDDEN, arch.vpu.lanes, arch.vpu.pipeline_depth)   # GRU_CELL mode 1
    npu = math.ceil(traffic / arch.region_bytes_per_cycle(arch.placement.weights) + mxu + vpu)
    macs = BATCH * STEPS * g * (N_IN + HIDDEN)
    host = math.ceil(macs * arch.host.cycles_per_element["conv"] * arch.clock_mhz / arch.host.cpu_mhz)
    return npu, host


def _compile(tmp_path, wbuf_kib: int, host: str = "auto"):
    rng = np.random.default_rng(11)
    onnx.save(gru_model(rng, STEPS, BATCH, N_IN, HIDDEN, 1, False), tmp_path / "gru.onnx")
    arch = small_arch(64, wbuf_kib, 64, 8, 8, "ws")
    calib = gru_feeds(rng, 4, STEPS, BATCH, N_IN, HIDDEN, False)
    return arch, npukit.compile(tmp_path / "gru.onnx", arch, calibration=calib, host=host, sqnr=False)


def test_resident_weights_keep_the_gru_on_the_npu(tmp_path):
    """A 32 KB WBUF holds both matrices: 4.6 KB read once, far cheaper than the host's MACs."""
    arch, prog = _compile(tmp_path, 32)
    npu, host = _estimates(arch, streamed=False)
    assert npu < host
    assert prog.profile().host_ops == []
    tiling = next(la for la in prog.profile().layers if la.op == "gru").detail["tiling"]
    assert "weights resident" in tiling, tiling
    cycles = next(la for la in prog.profile().layers if la.op == "gru").cycles
    assert abs(npu - cycles) <= 0.15 * cycles       # the estimate against the event model


@pytest.mark.parametrize("policy", ["auto", "never"])
def test_streamed_weights_send_the_gru_to_the_host_unless_never(policy, tmp_path):
    """A 4 KB WBUF leaves 1.7 KB beside the parameter block: the 3 KB recurrent matrix is re-read
    from the 1 B/cycle region every step, which the estimate charges above the host's MACs, so
    the GRU runs on the host with both figures in the reason; host="never" keeps it on the NPU."""
    arch, prog = _compile(tmp_path, 4, policy)
    npu, host = _estimates(arch, streamed=True)
    assert host < npu
    ops = prog.profile().host_ops
    if policy == "never":
        assert ops == []
        tiling = next(la for la in prog.profile().layers if la.op == "gru").detail["tiling"]
        assert "streamed" in tiling, tiling
        cycles = next(la for la in prog.profile().layers if la.op == "gru").cycles
        assert abs(npu - cycles) <= 0.15 * cycles   # the estimate against the event model
    else:
        assert [(h["op"], h["reason"]) for h in ops] == \
            [("gru", f"host estimate {host} cycles < NPU estimate {npu} cycles")]
