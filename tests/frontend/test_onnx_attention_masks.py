"""Attention masks in int8: the masked keys of a softmax stay masked.

A model masks padded keys with -inf (torch's masked_fill), float32's lowest or -1e9, or adds
-10000 (BERT's additive mask). None of these is an int8 value: a masked value is the lowest
code of its tensor's range, the mask tensor's range reaches far enough below its finite value
that adding it saturates the sum, and a softmax's input keeps 16 below its finite values so
that a masked key weighs at most e^-16 of the row's largest. Oracle: onnxruntime's float
softmax, within int8 steps of its output (1/256)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.quant.calibrate import MASK_MARGIN, MASK_SPAN, Observer
from onnx_testutil import onnxruntime_outputs

HEADS, KEYS = 2, 12


def _model(form: str, masked: float) -> bytes:
    """scores [1, HEADS, KEYS, KEYS] and a key mask [1, KEYS] (True / 1: a real key) -> softmax."""
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, HEADS, KEYS, KEYS])
    keep_type = TensorProto.BOOL if form != "multiply" else TensorProto.FLOAT
    keep = helper.make_tensor_value_info("keep", keep_type, [1, KEYS])
    inits = {"masked": np.asarray(masked, np.float32), "zero": np.asarray(0.0, np.float32),
             "one": np.asarray(1.0, np.float32), "shape": np.asarray([1, 1, 1, KEYS], np.int64)}
    if form == "add":           # masked_fill(~keep, masked) of zeros, added to the scores
        nodes = [helper.make_node("Not", ["keep"], ["drop"]),
                 helper.make_node("Where", ["drop", "masked", "zero"], ["bias"]),
                 helper.make_node("Reshape", ["bias", "shape"], ["bias4"]),
                 helper.make_node("Add", ["scores", "bias4"], ["logits"])]
    elif form == "fill":        # masked_fill of the scores themselves
        nodes = [helper.make_node("Reshape", ["keep", "shape"], ["keep4"]),
                 helper.make_node("Where", ["keep4", "scores", "masked"], ["logits"])]
    else:                       # (1 - keep) * masked, added: BERT's extended attention mask
        nodes = [helper.make_node("Sub", ["one", "keep"], ["drop"]),
                 helper.make_node("Mul", ["drop", "masked"], ["bias"]),
                 helper.make_node("Reshape", ["bias", "shape"], ["bias4"]),
                 helper.make_node("Add", ["scores", "bias4"], ["logits"])]
    nodes.append(helper.make_node("Softmax", ["logits"], ["p"], axis=-1))
    graph = helper.make_graph(nodes, "masked_softmax", [scores, keep],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def _samples(rng: np.random.Generator, n: int, form: str) -> dict[str, np.ndarray]:
    scores = (rng.normal(size=(n, 1, HEADS, KEYS, KEYS)) * 2).astype(np.float32)
    keep = np.zeros((n, 1, KEYS), bool)
    for i in range(n):          # each sample's real keys first, then padding
        keep[i, 0, :rng.integers(3, KEYS)] = True
    return {"scores": scores, "keep": keep if form != "multiply" else keep.astype(np.float32)}


@pytest.mark.parametrize("form,masked", [("add", -np.inf), ("fill", -np.inf), ("fill", np.finfo(np.float32).min),
                                         ("fill", -1e9), ("multiply", -10000.0)])
def test_masked_keys_stay_masked(form, masked, tmp_path):
    path = tmp_path / "masked.onnx"
    path.write_bytes(mb := _model(form, masked))
    rng = np.random.default_rng(5)
    calib = _samples(rng, 8, form)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration=calib, sqnr=False)
    held = _samples(rng, 4, form)
    for i in range(4):
        feed = {k: v[i] for k, v in held.items()}
        want, got = onnxruntime_outputs(mb, feed)["p"], prog.run(feed)["p"]
        padding = ~held["keep"][i, 0].astype(bool)
        assert np.abs(got[..., padding]).max() <= 1 / 256          # a masked key: 0, or one step
        assert np.abs(got - want).max() <= 10 / 256       # int8 logits at ~0.13 a step: under 10 steps


def test_observer_ranges_of_masked_values():
    """Hand-worked: a mask of 0 and -inf spans MASK_SPAN below 0; a softmax's input (beta 0.5)
    keeps MASK_MARGIN / beta below its finite values; other tensors ignore -inf as a pole."""
    mask = Observer(0, "extremes")
    mask.update(np.array([0.0, -np.inf, 0.0], np.float32))
    assert (mask.range("minmax").lo, mask.range("minmax").hi) == (-MASK_SPAN, 0.0)
    logits = Observer(0, "extremes", beta=0.5)
    logits.update(np.array([-3.0, 2.0, -np.inf, -10003.0], np.float32))
    assert (logits.range("minmax").lo, logits.range("minmax").hi) == (-3.0 - MASK_MARGIN / 0.5, 2.0)
    log_power = Observer(0, "extremes")
    log_power.update(np.array([-5.0, 1.0, -np.inf], np.float32))
    assert (log_power.range("minmax").lo, log_power.range("minmax").hi) == (-5.0, 1.0)
