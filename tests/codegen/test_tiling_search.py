"""The tiling searches (plain and depthwise + 1x1 fused) skip candidates whose lower bound (peak-rate compute plus instruction
overhead) cannot beat the slowest of the tilings it keeps: the kept tilings must be exactly
those of the search that estimates every candidate."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from npukit.arch import load_arch
from npukit.schedule import fused
from npukit.schedule.tiling import Bandwidth, ConvShape, _search


@st.composite
def layers(draw):
    depthwise = draw(st.booleans())
    c = draw(st.sampled_from([1, 3, 8, 16, 24, 64, 96, 160, 512]))
    k = c * draw(st.integers(1, 2)) if depthwise else draw(st.sampled_from([1, 8, 16, 32, 64, 128, 1000]))
    kh = draw(st.sampled_from([1, 3, 5, 7]))
    stride = draw(st.integers(1, 2))
    eh = draw(st.integers(1, 60))
    ew = draw(st.integers(1, 60))
    h, w = (eh - 1) * stride + kh, (ew - 1) * stride + kh
    shape = ConvShape(h, w, c, eh, ew, c if depthwise else k, kh, kh, stride, 1, 1, k // c if depthwise else 0)
    arch = load_arch(draw(st.sampled_from(["npu-s", "npu-m", "npu-l", "u55-256", "npu-dc"])))
    if draw(st.booleans()):
        arch = arch.replace({"mxu.rows": 1, "mxu.cols": 1, "mxu.fold_overlap": False})   # the bound's edge
    return shape, arch, draw(st.sampled_from([1, 2])), draw(st.sampled_from(["auto", "ws", "os"])), \
        draw(st.sampled_from([1, 4, 8])), draw(st.sampled_from([0, 1, 3]))


@settings(max_examples=150, deadline=None)
@given(case=layers())
def test_pruned_search_keeps_exactly_the_tilings_of_the_full_search(case):
    shape, arch, nbuf, flow, top, max_rows = case
    args = (shape, arch, nbuf, flow, "auto", "auto", max_rows, None, None, (False, False), top)
    try:
        full = _search(*args, prune=False)
    except Exception as e:       # no tiling fits: both searches must say so
        try:
            _search(*args)
        except type(e):
            return
        raise AssertionError("the pruned search found a tiling the full search did not")
    assert _search(*args) == full


@settings(max_examples=100, deadline=None)
@given(case=layers(), k=st.sampled_from([8, 16, 24, 96, 320]), bpc=st.sampled_from([0.5, 1.0, 8.0]),
       cin=st.sampled_from([0, 8, 16, 24]))
def test_pruned_fused_search_keeps_exactly_the_tilings_of_the_full_search(case, k, bpc, cin):
    """Pairs and, with `cin`, expansion + depthwise + 1x1 groups."""
    shape, arch, nbuf, flow, top, max_rows = case
    dw = ConvShape(shape.h, shape.w, shape.c, shape.eh, shape.ew, shape.c, shape.kh, shape.kw, shape.sh, 1, 1, 1)
    args = (fused.FusedShape(dw, k, cin), arch, nbuf, flow, "auto", max_rows, arch.abuf_bytes,
            Bandwidth(bpc, bpc, bpc), (False, False), top)
    assert fused._search(*args) == fused._search(*args, prune=False)
