"""An ONNX graph builder that keeps a probe batch flowing through the graph as it grows.

Every node added is run at once (onnxruntime, one node) on the probe values of its inputs,
so batch-norm statistics and residual scales can be set from the activations they will see:
random-weight models whose activations keep roughly unit variance, as a trained net's do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # what torch.onnx writes for BatchNorm2d(momentum=0.1)


@dataclass
class GraphBuilder:
    """Accumulates nodes/initialisers; `probe` holds each tensor's value on the probe batch."""

    input_name: str
    input_shape: tuple[int, ...]  # NCHW, batch included (the model's declared batch)
    seed: int = 0
    probe_batch: int = 2
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    probe: dict[str, np.ndarray] = field(default_factory=dict)
    rng: np.random.Generator = field(init=False)
    _counter: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        shape = (self.probe_batch, *self.input_shape[1:])
        self.probe[self.input_name] = self.rng.standard_normal(shape).astype(np.float32)

    # -- naming and constants -------------------------------------------------------------
    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}_{self._counter}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.fresh(stem)
        array = np.asarray(value)
        self.initializers.append(numpy_helper.from_array(array, name))
        self.probe[name] = array
        return name

    # -- nodes ----------------------------------------------------------------------------
    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        """Add a one-output node, evaluate it on the probe values and return its output name."""
        out = self.fresh(op.lower())
        node = helper.make_node(op, inputs, [out], name=out, **attrs)
        self.nodes.append(node)
        self.probe[out] = _run_single(node, [(n, self.probe[n]) for n in inputs if n])
        return out

    def conv(
        self,
        x: str,
        out_ch: int,
        kernel: tuple[int, int],
        stride: int = 1,
        pads: tuple[int, int, int, int] | None = None,
        group: int = 1,
        bias: bool = False,
    ) -> str:
        """He-initialised Conv; default pads are symmetric 'same' for odd kernels (PyTorch)."""
        in_ch = self.probe[x].shape[1]
        kh, kw = kernel
        fan_in = in_ch // group * kh * kw
        w = self.rng.standard_normal((out_ch, in_ch // group, kh, kw)) * np.sqrt(2.0 / fan_in)
        inputs = [x, self.const("w", w.astype(np.float32))]
        if bias:
            inputs.append(self.const("b", np.zeros(out_ch, np.float32)))
        if pads is None:
            pads = (kh // 2, kw // 2, kh // 2, kw // 2)
        return self.node(
            "Conv", inputs, kernel_shape=[kh, kw], strides=[stride, stride],
            pads=list(pads), group=group,
        )

    def standardise_conv(self, conv_out: str, target_std: float) -> None:
        """Rescale the latest Conv (with bias) so each output channel has mean 0, given std.

        For convs with no BN after them (e.g. a 1x1 projection shortcut)."""
        node = self.nodes[-1]
        if node.op_type != "Conv" or node.output[0] != conv_out or len(node.input) != 3:
            raise ValueError(f"{conv_out} is not the output of the latest biased Conv")
        value = self.probe[conv_out]
        mean = value.mean(axis=(0, 2, 3))
        scale = target_std / (value.std(axis=(0, 2, 3)) + 1e-6)
        by_name = {t.name: t for t in self.initializers}
        w_name, b_name = node.input[1], node.input[2]
        w = self.probe[w_name] * scale[:, None, None, None].astype(np.float32)
        b = (self.probe[b_name] - mean) * scale
        for name, array in ((w_name, w), (b_name, b)):
            array = array.astype(np.float32)
            by_name[name].CopyFrom(numpy_helper.from_array(array, name))
            self.probe[name] = array
        self.probe[conv_out] = ((value - mean[None, :, None, None]) * scale[None, :, None, None]).astype(np.float32)

    def batch_norm(self, x: str, gamma: np.ndarray | None = None) -> str:
        """BatchNormalization whose running stats are the probe's per-channel mean/var.

        Output per channel is ~ gamma * N(0, 1) + beta; gamma defaults to U(0.7, 1.3) and
        beta to N(0, 0.1), so channels differ in range like a trained net's do.
        """
        value = self.probe[x]
        channels = value.shape[1]
        axes = tuple(i for i in range(value.ndim) if i != 1)
        mean = value.mean(axis=axes)
        var = value.var(axis=axes) + 1e-3
        if gamma is None:
            gamma = np.asarray(self.rng.uniform(0.7, 1.3, channels))
        beta = self.rng.normal(0.0, 0.1, channels)
        params = [gamma, beta, mean, var]
        names = [self.const(stem, p.astype(np.float32)) for stem, p in
                 zip(("bn_scale", "bn_bias", "bn_mean", "bn_var"), params)]
        return self.node("BatchNormalization", [x, *names], epsilon=BN_EPSILON, momentum=BN_MOMENTUM)

    def residual_gamma(self, branch: str, shortcut: str) -> np.ndarray:
        """Per-channel BN scale g for `branch` so var(g * bn(branch) + shortcut) ~= 1."""
        z = self.probe[branch]
        axes = (0, 2, 3)
        z = (z - z.mean(axis=axes, keepdims=True)) / (z.std(axis=axes, keepdims=True) + 1e-6)
        s = self.probe[shortcut]
        s_centred = s - s.mean(axis=axes, keepdims=True)
        cov = (z * s_centred).mean(axis=axes)
        var_s = s.var(axis=axes)
        # g^2 + 2 g cov + var_s = 1  ->  positive root; at least 0.5 so the branch still counts.
        disc = cov**2 - var_s + 1.0
        root = -cov + np.sqrt(np.maximum(disc, 0.0))
        return np.where((disc > 0) & (root > 0.5), root, 0.5)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def relu6(self, x: str) -> str:
        """Clip(x, 0, 6) with min/max as inputs, as opset >= 11 exports of ReLU6 have it."""
        lo = self.const("clip_min", np.array(0.0, np.float32))
        hi = self.const("clip_max", np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi])

    def gemm(self, x: str, out_features: int) -> str:
        """Gemm(x, W^T, b) as PyTorch's Linear exports it (transB=1)."""
        in_features = self.probe[x].shape[1]
        w = self.rng.standard_normal((out_features, in_features)) * np.sqrt(1.0 / in_features)
        b = self.rng.normal(0.0, 0.01, out_features)
        return self.node(
            "Gemm", [x, self.const("fc_w", w.astype(np.float32)), self.const("fc_b", b.astype(np.float32))],
            alpha=1.0, beta=1.0, transB=1,
        )

    # -- result ---------------------------------------------------------------------------
    def model(self, output: str, graph_name: str, output_name: str = "logits") -> onnx.ModelProto:
        """The finished model; the last node's output is renamed to `output_name`."""
        last = self.nodes[-1]
        if last.output[0] != output:
            raise ValueError(f"output {output} is not the last node's output")
        last.output[0] = output_name
        out_shape = [self.input_shape[0], *self.probe[output].shape[1:]]
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT, list(self.input_shape))],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, out_shape)],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="npukit.models.zoo"
        )
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _run_single(node: onnx.NodeProto, inputs: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Evaluate one node with onnxruntime on concrete inputs (all fed as graph inputs)."""
    graph = helper.make_graph(
        [node], "probe",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
         for n, v in inputs],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(inputs))[0]
