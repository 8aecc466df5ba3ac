"""Single-operator int8 UNIDIRECTIONAL_SEQUENCE_LSTM models (TFLite's fully integer 8x8_16 LSTM:
24 inputs with the two variable state tensors, 5 intermediates) with random weights, for pinning
npukit's integer LSTM to LiteRT."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.kernels.kernels_lstm import LstmQuant
from npukit.testing.tflite_builder import TensorSpec, build_single_op


@dataclass(frozen=True)
class LstmCase:
    model: bytes
    quant: LstmQuant
    w_input: np.ndarray          # (4, n_cell, n_input) int8, gates i, f, g, o
    w_recurrent: np.ndarray      # (4, n_cell, n_cell) int8
    bias: np.ndarray             # (4, n_cell) int32
    input_shape: tuple[int, ...]
    time_major: bool


def random_lstm(rng: np.random.Generator, batch: int, steps: int, n_input: int, n_cell: int,
                cell_exp: int = -11, cell_clip: float = 0.0, time_major: bool = False, cifg: bool = False) -> LstmCase:
    """A random integer LSTM; scales drawn so gates span their Q3.12 range without saturating
    everything. `cifg`: no input gate operands (the input gate is 1 - forget)."""
    in_s, in_zp = float(rng.uniform(0.01, 0.05)), int(rng.integers(-20, 20))
    h_s, h_zp = float(rng.uniform(1.5, 2.5) / 256), int(rng.integers(-10, 10))
    w_in_s = tuple(float(rng.uniform(0.5, 1.5) / 127 / np.sqrt(n_input) / in_s) for _ in range(4))
    w_rec_s = tuple(float(rng.uniform(0.5, 1.5) / 127 / np.sqrt(n_cell) / h_s) for _ in range(4))
    w_in = rng.integers(-127, 128, (4, n_cell, n_input), dtype=np.int64).astype(np.int8)
    w_rec = rng.integers(-127, 128, (4, n_cell, n_cell), dtype=np.int64).astype(np.int8)
    bias = rng.integers(-2000, 2000, (4, n_cell), dtype=np.int64).astype(np.int32)
    cell_s = 2.0 ** cell_exp
    q = LstmQuant(in_s, in_zp, w_in_s, w_rec_s, h_s, h_zp, h_s, h_zp, cell_s, cell_clip)
    shape = (steps, batch, n_input) if time_major else (batch, steps, n_input)
    out_shape = shape[:2] + (n_cell,)
    names = ("input", "forget", "cell", "output")
    ws_in = [TensorSpec(f"i2{g}", (n_cell, n_input), "int8", w_in_s[k], 0, data=w_in[k]) for k, g in enumerate(names)]
    ws_rec = [TensorSpec(f"r2{g}", (n_cell, n_cell), "int8", w_rec_s[k], 0, data=w_rec[k])
              for k, g in enumerate(names)]
    biases = [TensorSpec(f"b_{g}", (n_cell,), "int32", in_s * w_in_s[k], 0, data=bias[k]) for k, g in enumerate(names)]
    none = TensorSpec("", (0,))
    if cifg:
        ws_in[0] = ws_rec[0] = biases[0] = none
    inputs = [TensorSpec("x", shape, "int8", in_s, in_zp), *ws_in, *ws_rec, none, none, none, *biases, none, none,
              TensorSpec("h_state", (batch, n_cell), "int8", h_s, h_zp, variable=True),
              TensorSpec("c_state", (batch, n_cell), "int16", cell_s, 0, variable=True),
              none, none, none, none]
    inter = [TensorSpec(f"gate_{g}", (0,), "int16", 2.0 ** -12, 0) for g in names]
    inter.append(TensorSpec("hidden", (0,), "int8", h_s, h_zp))
    opts = tfl.UnidirectionalSequenceLSTMOptionsT()
    opts.fusedActivationFunction = tfl.ActivationFunctionType.TANH
    opts.cellClip = cell_clip
    opts.projClip = 0.0
    opts.timeMajor = time_major
    model = build_single_op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs,
                            [TensorSpec("y", out_shape, "int8", h_s, h_zp)], opts, intermediates=inter)
    return LstmCase(model, q, w_in, w_rec, bias, shape, time_major)


def run_lstm_reference(case: LstmCase, x: np.ndarray, h0: np.ndarray, c0: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model on LiteRT's BUILTIN_REF kernels from initial states (h0, c0): (output, final h,
    final c) read back from the variable tensors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=case.model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    interp.set_tensor(index["h_state"], np.asarray(h0, np.int8))
    interp.set_tensor(index["c_state"], np.asarray(c0, np.int16))
    interp.set_tensor(interp.get_input_details()[0]["index"], np.asarray(x, np.int8))
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    return out, interp.get_tensor(index["h_state"]), interp.get_tensor(index["c_state"])


def run_stream_reference(model: bytes, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The model's output for each input in turn on one LiteRT interpreter (BUILTIN_REF): the
    variable states carry over from invoke to invoke."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    outs = []
    for x in xs:
        interp.set_tensor(interp.get_input_details()[0]["index"], np.asarray(x, np.int8))
        interp.invoke()
        outs.append(interp.get_tensor(interp.get_output_details()[0]["index"]).copy())
    return outs
