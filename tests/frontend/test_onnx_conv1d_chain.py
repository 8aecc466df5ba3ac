"""A chain of 1-D convs with Relu and a residual Add between them (a small keyword / voice
activity net, e.g. pulsevad): the element-wise ops move above the views between [N, C, L]
and NHWC, so the views cancel and each Relu fuses into its conv."""
from __future__ import annotations

import numpy as np
from onnx_testutil import assert_compiled_matches_onnxruntime, check_against_onnxruntime, model_bytes, node, ops

from npukit.ir.graph import Op

RNG = np.random.default_rng(11)


def rand(*shape, scale=0.4):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def chain_model() -> bytes:
    c = 8
    inits = {"W0": rand(c, 4, 3), "B0": rand(c), "Wd": rand(c, 1, 5), "Bd": rand(c), "Wp": rand(c, c, 1),
             "Bp": rand(c), "Ws": rand(c, c, 1), "Bs": rand(c)}
    nodes = [node("Conv", ["x", "W0", "B0"], ["a"], pads=[1, 1]),
             node("Relu", ["a"], ["ar"]),
             node("Conv", ["ar", "Wd", "Bd"], ["d"], pads=[2, 2], group=c),
             node("Relu", ["d"], ["dr"]),
             node("Conv", ["dr", "Wp", "Bp"], ["p"]),
             node("Conv", ["ar", "Ws", "Bs"], ["s"]),
             node("Add", ["p", "s"], ["sum"]),
             node("Relu", ["sum"], ["y"])]
    return model_bytes(nodes, {"x": (1, 4, 20)}, ["y"], inits)


def test_views_between_1d_convs_cancel():
    g = check_against_onnxruntime(chain_model())
    # the input's view into NHWC, the output's view back; no clamp left outside a conv
    assert ops(g).count(Op.TRANSPOSE) == 2
    assert Op.CLAMP not in ops(g)
    assert ops(g).count(Op.CONV2D) == 4 and ops(g).count(Op.ADD) == 1


def test_1d_conv_chain_compiled_matches_onnxruntime(tmp_path):
    path = tmp_path / "chain.onnx"
    path.write_bytes(chain_model())
    xs = RNG.uniform(-2, 2, (9, 1, 4, 20)).astype(np.float32)
    assert_compiled_matches_onnxruntime(path, xs, k=8, steps=3.0)


def test_1d_input_view_is_written_by_the_host(tmp_path):
    """The input's [N, C, L] -> NHWC view is the host's layout change at the boundary (the
    I/O table's permutation), not an NPU transpose."""
    import npukit
    path = tmp_path / "chain.onnx"
    path.write_bytes(chain_model())
    prog = npukit.compile(path, "npu-m", calibration={"x": RNG.uniform(-2, 2, (4, 1, 4, 20)).astype(np.float32)},
                          sqnr=False)
    (x,) = prog.program.inputs
    assert x.perm == (0, 2, 1) and x.shape == (1, 4, 20)
    ops_run = [layer.op for layer in prog.program.layers]
    assert ops_run[0] == "reshape" and ops_run.count("transpose") == 1     # the output's view back
