"""One `npukit.Reuse` shared by the compiles of a model at several token counts and arches:
each program byte-identical to the one compiled alone (the oracle), with weight blocks
encoded once across them and each dense layer's weights quantised once (the token count
changes no key); anything else passed as `reuse` is refused."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.api import CompiledModel
from npukit.arch import load_arch
from npukit.codegen.reuse import Reuse
from npukit.compiler import compile_graph
from npukit.errors import InputError
from npukit.ir.graph import Op
from npukit.isa import wcodec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_scales import _tokens  # noqa: E402
from test_wide_graph import feed_forward_graph  # noqa: E402

ARCHES = [load_arch("npu-m"), load_arch("npu-s")]


def _model(g, arch, reuse=None, **how) -> CompiledModel:
    chose: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, sqnr=False, chose=chose, reuse=reuse, **how)
    return CompiledModel(prog, arch, qg, scales=chose[0])


def test_shared_reuse_gives_the_programs_compiled_alone():
    rng = np.random.default_rng(3)
    g = feed_forward_graph(rng)
    first = _model(g, ARCHES[0], calibration={"x": rng.standard_normal((6, 1, 6, 32)).astype(np.float32)})
    reuse = Reuse()
    calls = {"alone": 0, "shared": 0}
    real = wcodec.encode_many       # wcodec.encode encodes through it too

    def counted(who):
        def encode_many(raws):
            calls[who] += len(raws)
            return real(raws)
        return encode_many
    try:
        for n in (5, 9, 5):
            gn = _tokens(g, n)
            wcodec.encode_many = counted("alone")        # type: ignore[assignment]
            alone = _model(gn, ARCHES[0], scales=first.scales)
            alone_s = alone.for_arch(ARCHES[1])
            wcodec.encode_many = counted("shared")       # type: ignore[assignment]
            shared = _model(gn, ARCHES[0], reuse, scales=first.scales)
            shared_s = shared.for_arch(ARCHES[1], reuse=reuse)
            assert shared.to_bytes() == alone.to_bytes() and shared_s.to_bytes() == alone_s.to_bytes()
    finally:
        wcodec.encode_many = real        # type: ignore[assignment]
    assert any(getattr(ins, "codec", 0) for ins in shared.program.instructions)     # blocks are compressed
    # with `reuse` each distinct block and weight tensor is encoded once (the ratio estimate
    # encodes a sample of the tensor); alone, every compile encodes all of them again
    assert calls["shared"] == len(reuse.streams) + len(reuse.ratios)
    assert calls["alone"] > calls["shared"]
    dense = [nd for nd in g.nodes if nd.op in (Op.FULLY_CONNECTED, Op.CONV2D)]
    assert dense and len(reuse.quantised) == len(dense)


def test_reuse_must_be_a_reuse():
    with pytest.raises(InputError, match="reuse must be an npukit.Reuse"):
        npukit.compile("model.onnx", reuse={})
