"""Small ONNX models for simulator tests, built with onnx.helper."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits) -> bytes:
    g = helper.make_graph(nodes, "case",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                          initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def conv_model(rng, c, k, h, w, kernel, stride, dilation, pads, groups, transposed=False, relu=False,
               output_padding=(0, 0)) -> bytes:
    kh, kw = kernel
    if transposed:
        wshape = (c, k // groups, kh, kw)
        attrs = dict(kernel_shape=[kh, kw], strides=list(stride), dilations=list(dilation), pads=list(pads),
                     group=groups, output_padding=list(output_padding))
        op = "ConvTranspose"
    else:
        wshape = (k, c // groups, kh, kw)
        attrs = dict(kernel_shape=[kh, kw], strides=list(stride), dilations=list(dilation), pads=list(pads),
                     group=groups)
        op = "Conv"
    inits = {"W": rng.standard_normal(wshape) * 0.5, "B": rng.standard_normal(k) * 0.2}
    nodes = [helper.make_node(op, ["x", "W", "B"], ["c" if relu else "y"], **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    return model(nodes, [("x", [1, c, h, w])], ["y"], inits)


def vector_model(rng, c, h, w, pool_kind, pool_kernel, pool_stride, pool_pads, bcast, act) -> bytes:
    """conv -> pool -> eltwise with a broadcast operand -> activation -> concat/slice/pad -> head."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inits = {"W": rng.standard_normal((c, c, 3, 3)) * 0.4, "B": rng.standard_normal(c) * 0.1}
    if pool_kind == "global":
        nodes.append(helper.make_node("GlobalAveragePool", ["c1"], ["p"]))
    else:
        nodes.append(helper.make_node(pool_kind, ["c1"], ["p"], kernel_shape=list(pool_kernel),
                                      strides=list(pool_stride), pads=list(pool_pads)))
    shapes = {"channel": (1, c, 1, 1), "scalar": (1,), "full": None}
    if bcast == "full":
        nodes.append(helper.make_node("Relu", ["p"], ["q"]))
        nodes.append(helper.make_node("Add", ["p", "q"], ["e"]))
    else:
        inits["K"] = rng.standard_normal(shapes[bcast]) + 0.5
        nodes.append(helper.make_node("Mul" if bcast == "channel" else "Add", ["p", "K"], ["e"]))
    nodes.append(helper.make_node(act, ["e"], ["a"]))
    nodes.append(helper.make_node("Concat", ["a", "e"], ["cat"], axis=1))
    nodes.append(helper.make_node("Pad", ["cat", "pads"], ["padded"], mode="constant"))
    inits["pads"] = None
    nodes.append(helper.make_node("GlobalAveragePool", ["padded"], ["g"]))
    nodes.append(helper.make_node("Flatten", ["g"], ["f"]))
    inits["W2"] = rng.standard_normal((5, 2 * c)) * 0.3
    nodes.append(helper.make_node("Gemm", ["f", "W2"], ["logits"], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=-1))
    g = helper.make_graph(nodes, "vec", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k)
                                       for k, v in inits.items() if v is not None]
                          + [numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "pads")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def conv_chain_model(rng, c, k1, k2, h, w, kernel, stride, pads, groups2) -> bytes:
    """conv -> relu -> (grouped) conv: the intermediate tensor can stay resident in ABUF, so
    the first conv writes it in place and the second reads it in place."""
    kh, kw = kernel
    inits = {"W1": rng.standard_normal((k1, c, kh, kw)) * 0.5, "B1": rng.standard_normal(k1) * 0.2,
             "W2": rng.standard_normal((k2, k1 // groups2, 3, 3)) * 0.5, "B2": rng.standard_normal(k2) * 0.2}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], kernel_shape=[kh, kw], strides=list(stride),
                              pads=list(pads)),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2", "B2"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              group=groups2)]
    return model(nodes, [("x", [1, c, h, w])], ["y"], inits)


def inverted_residual_model(rng, c, expand, k, h, w, kernel, stride, dilation, residual) -> bytes:
    """1x1 expand -> relu6 -> depthwise -> relu6 -> 1x1 project (+ input): a MobileNetV2
    block, whose depthwise and projection the compiler fuses."""
    kh, kw = kernel
    m = c * expand
    pads = [dilation[0] * (kh - 1) // 2, dilation[1] * (kw - 1) // 2] * 2
    inits = {"W1": rng.standard_normal((m, c, 1, 1)) * 0.5, "B1": rng.standard_normal(m) * 0.2,
             "W2": rng.standard_normal((m, 1, kh, kw)) * 0.5, "B2": rng.standard_normal(m) * 0.2,
             "W3": rng.standard_normal((k, m, 1, 1)) * 0.3, "B3": rng.standard_normal(k) * 0.2,
             "lo": np.float32(0), "hi": np.float32(6)}
    out = "p" if residual else "y"
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["e"], kernel_shape=[1, 1]),
             helper.make_node("Clip", ["e", "lo", "hi"], ["er"]),
             helper.make_node("Conv", ["er", "W2", "B2"], ["d"], kernel_shape=[kh, kw], strides=list(stride),
                              dilations=list(dilation), pads=pads, group=m),
             helper.make_node("Clip", ["d", "lo", "hi"], ["dr"]),
             helper.make_node("Conv", ["dr", "W3", "B3"], [out], kernel_shape=[1, 1])]
    if residual:
        nodes.append(helper.make_node("Add", ["p", "x"], ["y"]))
    return model(nodes, [("x", [1, c, h, w])], ["y"], inits)
