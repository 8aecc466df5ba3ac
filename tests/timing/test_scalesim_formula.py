"""Per-layer MXU cycles against SCALE-Sim's closed form (DESIGN.md section 6).

With `fold_overlap = false`, a fixed dataflow and SRAMs large enough that no layer is
split, each conv layer's `mxu_cycles` must equal SCALE-Sim's compute cycles:

    ws: rows-dim = Win (kh*kw*cin), cols-dim = K, T = E (output pixels), per fold 2R + C + T - 2
    os: rows-dim = E,               cols-dim = K, T = Win,                per fold T + R + C - 2
    cycles = ceil(rows-dim / R) * ceil(cols-dim / C) * per-fold - 1

The formula is written out here, independently of npukit.cost.costs.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.codegen.context import CompileOptions
from npukit.arch import load_arch
from npukit.isa import instructions as I

HUGE_KIB = 64 * 1024


@dataclass(frozen=True)
class ConvCase:
    size: int       # square input H = W
    cin: int
    cout: int
    kernel: int
    stride: int
    pad: int


CASES = [
    ConvCase(size=12, cin=16, cout=40, kernel=3, stride=1, pad=1),    # several row and column folds
    ConvCase(size=15, cin=3, cout=24, kernel=5, stride=2, pad=0),     # strided, Win = 75
    ConvCase(size=10, cin=20, cout=9, kernel=1, stride=1, pad=0),     # pointwise, K < C
    ConvCase(size=9, cin=8, cout=33, kernel=3, stride=2, pad=1),      # K one past a column fold
]


def scalesim_compute_cycles(e: int, k: int, win: int, rows: int, cols: int, dataflow: str) -> int:
    if dataflow == "ws":
        folds = math.ceil(win / rows) * math.ceil(k / cols)
        per_fold = 2 * rows + cols + e - 2
    else:
        folds = math.ceil(e / rows) * math.ceil(k / cols)
        per_fold = win + rows + cols - 2
    return folds * per_fold - 1


def _conv_model(case: ConvCase, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((case.cout, case.cin, case.kernel, case.kernel)).astype(np.float32) * 0.2
    b = rng.standard_normal(case.cout).astype(np.float32) * 0.1
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[case.kernel] * 2,
                            strides=[case.stride] * 2, pads=[case.pad] * 4)
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, case.cin, case.size, case.size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return model.SerializeToString()


def _arch(rows: int, cols: int, dataflow: str):
    return load_arch("npu-l").replace({
        "mxu.rows": rows, "mxu.cols": cols, "mxu.dataflow": dataflow, "mxu.fold_overlap": False,
        "sram.abuf_kib": HUGE_KIB, "sram.wbuf_kib": HUGE_KIB, "sram.acc_kib": HUGE_KIB})


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", [(8, 8), (16, 4)])
@pytest.mark.parametrize("index", range(len(CASES)))
def test_conv_mxu_cycles_equal_scalesim_closed_form(tmp_path, index, rows, cols, dataflow):
    case = CASES[index]
    path = tmp_path / "conv.onnx"
    path.write_bytes(_conv_model(case, seed=index))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # random calibration is fine: only timing is checked
        # the closed forms pick one tile for a layer that fits; timing candidates could pick
        # a pipelined split, which is not the single GEMM SCALE-Sim's formula describes
        model = npukit.compile(path, _arch(rows, cols, dataflow), options=CompileOptions(timed_candidates=1))
    convs = [layer for layer in model.profile().layers if layer.op == "conv2d"]
    assert len(convs) == 1
    layer = convs[0]
    out = (case.size + 2 * case.pad - case.kernel) // case.stride + 1
    # the layer really ran as one tile: one MXU instruction over all rows, filters and channels
    index_of = next(i for i, la in enumerate(model.program.layers) if la.name == layer.name)
    tiles = [ins for ins in model.program.instructions if ins.layer == index_of and isinstance(ins, I.Conv)]
    assert [(t.out_h, t.out_w, t.k, t.c_len) for t in tiles] == [(out, out, case.cout, case.cin)]
    want = scalesim_compute_cycles(out * out, case.cout, case.kernel ** 2 * case.cin, rows, cols, dataflow)
    assert layer.mxu_cycles == want


def test_formula_matches_hand_worked_example():
    # 3x3x16 -> 40 on 12x12 (pad 1): E = 144, Win = 144, K = 40 on an 8x8 array.
    # ws: 18 x 5 folds of 2*8 + 8 + 144 - 2 = 166 cycles -> 90 * 166 - 1
    assert scalesim_compute_cycles(144, 40, 144, 8, 8, "ws") == 14939
    # os: 18 x 5 folds of 144 + 8 + 8 - 2 = 158 cycles -> 90 * 158 - 1
    assert scalesim_compute_cycles(144, 40, 144, 8, 8, "os") == 14219
