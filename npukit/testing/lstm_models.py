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
    w_input: np.ndarray          # (G, n_cell, n_input) int8, gates i, f, g, o (f, g, o with CIFG)
    w_recurrent: np.ndarray      # (G, n_cell, n_output) int8
    bias: np.ndarray             # (G, n_cell) int32
    input_shape: tuple[int, ...]
    time_major: bool
    peephole: np.ndarray | None = None     # (G, n_cell) int16, the g gate's row zero
    norm: np.ndarray | None = None         # (G, n_cell) int16 layer-norm coefficients
    projection: np.ndarray | None = None   # (n_output, n_cell) int8
    projection_bias: np.ndarray | None = None

    def prepare(self):
        from npukit.kernels.kernels_lstm import prepare_lstm
        return prepare_lstm(self.quant, self.w_input, self.w_recurrent, self.bias, self.peephole, self.norm,
                            self.projection, self.projection_bias)


def random_lstm(rng: np.random.Generator, batch: int, steps: int, n_input: int, n_cell: int,
                cell_exp: int = -11, cell_clip: float = 0.0, time_major: bool = False, cifg: bool = False,
                peephole: bool = False, norm: bool = False, n_output: int = 0, proj_clip: float = 0.0) -> LstmCase:
    """A random integer LSTM; scales drawn so gates span their Q3.12 range without saturating
    everything. `cifg`: no input gate operands (the input gate is 1 - forget); `peephole`:
    int16 cell-to-gate weights; `norm`: layer-norm coefficients (and gate intermediates at their
    own scales); `n_output` > 0: a projection to n_output with a bias, clipped at `proj_clip`."""
    in_s, in_zp = float(rng.uniform(0.01, 0.05)), int(rng.integers(-20, 20))
    h_s, h_zp = float(rng.uniform(1.5, 2.5) / 256), int(rng.integers(-10, 10))
    n_out = n_output or n_cell
    w_in_s = [float(rng.uniform(0.5, 1.5) / 127 / np.sqrt(n_input) / in_s) for _ in range(4)]
    w_rec_s = [float(rng.uniform(0.5, 1.5) / 127 / np.sqrt(n_out) / h_s) for _ in range(4)]
    w_in = rng.integers(-127, 128, (4, n_cell, n_input), dtype=np.int64).astype(np.int8)
    w_rec = rng.integers(-127, 128, (4, n_cell, n_out), dtype=np.int64).astype(np.int8)
    bias = rng.integers(-2000, 2000, (4, n_cell), dtype=np.int64).astype(np.int32)
    cell_s = 2.0 ** cell_exp
    names = ("input", "forget", "cell", "output")
    gate_s = [2.0 ** -12 * float(rng.uniform(0.5, 2.0)) if norm else 2.0 ** -12 for _ in range(4)]
    peep_s = [float(rng.uniform(0.3, 1.0) / 32767) for _ in range(4)]
    peep = rng.integers(-20000, 20000, (4, n_cell), dtype=np.int64).astype(np.int16)
    peep[2] = 0
    norm_s = [float(rng.uniform(0.5, 2.0) / 16384) for _ in range(4)]
    coeff = rng.integers(8000, 24000, (4, n_cell), dtype=np.int64).astype(np.int16)
    if norm:
        bias = rng.integers(-(1 << 22), 1 << 22, (4, n_cell), dtype=np.int64).astype(np.int32)
    out_s, out_zp = (float(rng.uniform(1.5, 2.5) / 256), int(rng.integers(-10, 10))) if n_output else (h_s, h_zp)
    proj_s = float(rng.uniform(0.5, 1.5) / 127 / np.sqrt(n_cell) * h_s / out_s) if n_output else 0.0
    proj = rng.integers(-127, 128, (n_out, n_cell), dtype=np.int64).astype(np.int8)
    proj_b = rng.integers(-3000, 3000, n_out, dtype=np.int64).astype(np.int32)
    if n_output:     # the recurrent weights see the projected state
        w_rec_s = [float(v * h_s / out_s) for v in w_rec_s]
    keep = [1, 2, 3] if cifg else [0, 1, 2, 3]

    def pick(v: list[float]) -> tuple[float, ...]:
        return tuple(v[k] for k in keep)
    q = LstmQuant(in_s, in_zp, pick(w_in_s), pick(w_rec_s), out_s, out_zp, h_s, h_zp, cell_s, cell_clip,
                  cifg, pick(gate_s) if norm else (), pick(peep_s) if peephole else (),
                  pick(norm_s) if norm else (), proj_s, proj_clip)
    shape = (steps, batch, n_input) if time_major else (batch, steps, n_input)
    out_shape = shape[:2] + (n_out,)
    ws_in = [TensorSpec(f"i2{g}", (n_cell, n_input), "int8", w_in_s[k], 0, data=w_in[k]) for k, g in enumerate(names)]
    ws_rec = [TensorSpec(f"r2{g}", (n_cell, n_out), "int8", w_rec_s[k], 0, data=w_rec[k])
              for k, g in enumerate(names)]
    biases = [TensorSpec(f"b_{g}", (n_cell,), "int32", in_s * w_in_s[k], 0, data=bias[k]) for k, g in enumerate(names)]
    none = TensorSpec("", (0,))
    peeps = [TensorSpec(f"c2{names[k]}", (n_cell,), "int16", peep_s[k], 0, data=peep[k]) if peephole else none
             for k in (0, 1, 3)]
    norms = [TensorSpec(f"ln_{g}", (n_cell,), "int16", norm_s[k], 0, data=coeff[k]) if norm else none
             for k, g in enumerate(names)]
    if cifg:
        ws_in[0] = ws_rec[0] = biases[0] = peeps[0] = norms[0] = none
    projs = [TensorSpec("proj", (n_out, n_cell), "int8", proj_s, 0, data=proj),
             TensorSpec("proj_b", (n_out,), "int32", proj_s * h_s, 0, data=proj_b)] if n_output else [none, none]
    inputs = [TensorSpec("x", shape, "int8", in_s, in_zp), *ws_in, *ws_rec, *peeps, *biases, *projs,
              TensorSpec("h_state", (batch, n_out), "int8", out_s, out_zp, variable=True),
              TensorSpec("c_state", (batch, n_cell), "int16", cell_s, 0, variable=True), *norms]
    inter = [TensorSpec(f"gate_{g}", (0,), "int16", gate_s[k], 0) for k, g in enumerate(names)]
    inter.append(TensorSpec("hidden", (0,), "int8", h_s, h_zp))
    opts = tfl.UnidirectionalSequenceLSTMOptionsT()
    opts.fusedActivationFunction = tfl.ActivationFunctionType.TANH
    opts.cellClip = cell_clip
    opts.projClip = proj_clip
    opts.timeMajor = time_major
    model = build_single_op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs,
                            [TensorSpec("y", out_shape, "int8", out_s, out_zp)], opts, intermediates=inter)
    k = np.asarray(keep)
    return LstmCase(model, q, w_in[k], w_rec[k], bias[k], shape, time_major, peep[k] if peephole else None,
                    coeff[k] if norm else None, proj if n_output else None, proj_b if n_output else None)


def run_lstm_reference(case: LstmCase, x: np.ndarray, h0: np.ndarray, c0: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model on LiteRT's BUILTIN_REF kernels from initial states (h0, c0): (output, final h,
    final c) read back from the variable tensors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=case.model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    interp.set_tensor(index["h_state"], np.asarray(h0, np.int8).reshape(interp.get_tensor(index["h_state"]).shape))
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
