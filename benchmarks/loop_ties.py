"""An unrolled ONNX Loop with and without its per-iteration copies tied (ir.ties): held-out
cosine against onnxruntime and npu-m cycles, one model and one setting per process.

    python benchmarks/loop_ties.py MODEL.onnx INPUT=B,N [--untied] [--host-loop NODE] [--held 4] [--calib 8]

MODEL is the speech embedding of ovos-ww-plugin-local-wake (a tf2onnx `map_fn` Loop over the
batch: B iterations). Samples as the fourth sweep's (docs/models.md): a sine of random pitch
(100-2000 Hz at 16 kHz) and level (0.05-0.8) with noise; `--calib` for calibration, `--held` more,
each scored by the cosine of the whole output against onnxruntime's, and the mean and worst
printed, and how far one clip's output moves when it is first or last in the batch
(`position_diff`). `--untied` imports without the ties (the unroller records none), as before they
existed; `--host-loop NODE` leaves that Loop on the host (float), the reference setting.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def audio(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    t = np.arange(shape[-1]) / 16000.0
    f = rng.uniform(100, 2000, shape[:-1] + (1,))
    level = rng.uniform(0.05, 0.8, shape[:-1] + (1,))
    x = level * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, f.shape)) + 0.02 * rng.standard_normal(shape)
    return x.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("shape", help="INPUT=B,N")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--host-loop", default="")
    ap.add_argument("--held", type=int, default=4)
    ap.add_argument("--calib", type=int, default=8)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    import onnxruntime as ort
    import npukit
    from npukit.frontend import onnx_loop
    if a.untied:
        onnx_loop.iteration_ties = lambda copies: []
    name, dims = a.shape.split("=")
    shape = tuple(int(d) for d in dims.split(","))
    rng = np.random.default_rng(0)
    calib = np.stack([audio(rng, shape) for _ in range(a.calib)])
    held = [audio(rng, shape) for _ in range(a.held)]
    t0 = time.perf_counter()
    prog = npukit.compile(a.model, "npu-m", input_shapes={name: shape}, calibration={name: calib}, sqnr=False,
                          host_nodes=[a.host_loop] if a.host_loop else ())
    compile_s = time.perf_counter() - t0
    sess = ort.InferenceSession(a.model)
    cos = []
    for x in held:
        want = sess.run(None, {name: x})[0].astype(np.float64).ravel()
        got = np.asarray(prog.run({name: x})[prog.output_names[0]], np.float64).ravel()
        cos.append(float(want @ got / (np.linalg.norm(want) * np.linalg.norm(got) + 1e-30)))
    # the same clip first and last in the batch: its output should not depend on where it is
    x = held[0]
    moved = np.concatenate([x[1:], x[:1]])
    out = prog.output_names[0]
    a_, b_ = np.asarray(prog.run({name: x})[out]), np.asarray(prog.run({name: moved})[out])
    position = float(np.abs(a_[0] - b_[-1]).max()) if shape[0] > 1 else 0.0
    prof = prog.profile()
    print(json.dumps({"shape": a.shape, "calib": a.calib, "untied": a.untied, "host_loop": a.host_loop,
                      "cosine_mean": round(float(np.mean(cos)), 5), "cosine_min": round(min(cos), 5),
                      "position_diff": round(position, 5), "output_amax": round(float(np.abs(a_).max()), 3),
                      "cycles": prof.total_cycles, "host_ops": len(prof.host_ops),
                      "compile_s": round(compile_s, 1)}))


if __name__ == "__main__":
    main()
