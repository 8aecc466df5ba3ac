"""A small STFT front as exporters write it: reflect Pad, Unsqueeze, a fixed-basis Conv1d,
Slice into real / imaginary halves, Pow 2, Add, Sqrt (then a conv, as silero's encoder)."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def stft_model(n: int, kernel: int, stride: int, bins: int, pad: tuple[int, int], tail_conv: bool = True,
               halves: tuple[int, int] | None = None, pad_value: float | None = None,
               drop_first_frame: bool = False) -> bytes:
    """[1, n] audio -> [1, bins, frames] magnitude (-> conv). `halves` overrides the second
    slice's bounds (a pattern that is not the two halves must not fuse); `pad_value` makes
    the pad a constant one; `drop_first_frame` has both slices also cut the frames from 1 on
    (silero's v5 export)."""
    t = np.arange(kernel)
    f = np.arange(bins)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * t / kernel)
    basis = np.concatenate([np.cos(2 * np.pi * f * t / kernel), -np.sin(2 * np.pi * f * t / kernel)]) * window
    inits = [numpy_helper.from_array(basis[:, None, :].astype(np.float32), "basis"),
             numpy_helper.from_array(np.array([0, pad[0], 0, pad[1]], np.int64), "pads"),
             numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array([2.0], np.float32), "two")]
    lo2, hi2 = halves or (bins, 2 * bins)
    frames = ([1], [2 ** 62]) if drop_first_frame else ([], [])
    for name, v in (("s0", 0), ("s1", bins), ("s2", lo2), ("s3", hi2)):
        inits.append(numpy_helper.from_array(np.array([v] + frames[name in ("s1", "s3")], np.int64), name))
    inits.append(numpy_helper.from_array(np.array([1, 2] if drop_first_frame else [1], np.int64), "axes"))
    if pad_value is not None:
        inits.append(numpy_helper.from_array(np.array(pad_value, np.float32), "pad_value"))
    pad_node = helper.make_node("Pad", ["x", "pads", "pad_value"], ["p"], mode="constant") if pad_value is not None \
        else helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect")
    nodes = [pad_node,
             helper.make_node("Unsqueeze", ["p", "one"], ["u"]),
             helper.make_node("Conv", ["u", "basis"], ["c"], kernel_shape=[kernel], strides=[stride], pads=[0, 0], dilations=[1]),
             helper.make_node("Slice", ["c", "s0", "s1", "axes"], ["re"]),
             helper.make_node("Slice", ["c", "s2", "s3", "axes"], ["im"]),
             helper.make_node("Pow", ["re", "two"], ["re2"]),
             helper.make_node("Pow", ["im", "two"], ["im2"]),
             helper.make_node("Add", ["re2", "im2"], ["sum"]),
             helper.make_node("Sqrt", ["sum"], ["mag" if tail_conv else "y"])]
    if tail_conv:
        rng = np.random.default_rng(kernel * 131 + bins)
        inits.append(numpy_helper.from_array((rng.standard_normal((3, bins, 3)) * 0.2).astype(np.float32), "W2"))
        nodes.append(helper.make_node("Conv", ["mag", "W2"], ["y"], kernel_shape=[3], pads=[1, 1], dilations=[1], strides=[1]))
    g = helper.make_graph(nodes, "stft", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def audio(rng, n: int, count: int) -> list[dict]:
    """Tones plus noise at a few levels: a wide dynamic range, as speech and silence."""
    t = np.arange(n)
    out = []
    for i in range(count):
        level = 10.0 ** rng.uniform(-3, 0)
        x = level * (np.sin(2 * np.pi * rng.uniform(0.01, 0.4) * t) + 0.3 * rng.standard_normal(n))
        out.append({"x": x[None].astype(np.float32)})
    return out
