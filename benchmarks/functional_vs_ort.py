"""Bit-exact functional simulation time of npukit against onnxruntime on the same int8 model.

    python benchmarks/functional_vs_ort.py [--models resnet18 mobilenet_v2] [--runs 3]

ResNet-18 and MobileNetV2 at 224x224 (npukit.models.zoo, seeded weights), quantised by
npukit on `npu-m` and run with `CompiledModel.run` (what `npukit run` does), against
onnxruntime (CPU, 2 intra-op threads, 1 inter-op thread) on the same int8 model exported by
`npukit export --qdq` (npukit's own scales, zero points and int8 weights as a QDQ ONNX
model). Both run the same input in the same process; times are the best of `--runs` after
one warm-up run. (`--peer-quantiser` times onnxruntime's own `quantize_static` QDQ model of
the float network instead.)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_line, table

TARGET = 3.0
N_CALIB = 8


def best_time(fn, runs: int) -> tuple[float, object]:
    out = fn()   # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def ort_qdq_session(float_path: Path, qdq_path: Path, name: str, calib: np.ndarray):
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{name: x} for x in calib])

        def get_next(self):
            return next(self.items, None)

    prepared = qdq_path.with_name(qdq_path.stem + "_prep.onnx")
    quant_pre_process(str(float_path), str(prepared))   # folds batch-norm scales into the convs
    quantize_static(str(prepared), str(qdq_path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    return ort.InferenceSession(str(qdq_path), opts, providers=["CPUExecutionProvider"])


def breakdown(compiled, name: str, x: np.ndarray, runs: int) -> dict[str, tuple[int, float]]:
    """Seconds per instruction kind in one simulated run (the best of `runs` per kind)."""
    timed = [compiled.seconds_by_kind({name: x}) for _ in range(runs)]
    return {k: (timed[0][k][0], min(r[k][1] for r in timed)) for k in timed[0]}


def bench(model_name: str, runs: int, tmp: Path, peer_quantiser: bool = False, by_kind: bool = False) -> dict:
    import npukit
    from npukit.models import zoo
    model = getattr(zoo, model_name)(size=224)
    float_path = zoo.save(model, tmp / f"{model_name}.onnx")
    name = model.graph.input[0].name
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((N_CALIB, *shape)).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)

    t0 = time.perf_counter()
    compiled = npukit.compile(float_path, "npu-m", calibration={name: calib})
    compile_s = time.perf_counter() - t0
    npk_s, npk_out = best_time(lambda: compiled.run({name: x}), runs)

    if peer_quantiser:
        sess = ort_qdq_session(float_path, tmp / f"{model_name}_qdq.onnx", name, calib)
    else:
        import onnxruntime as ort
        from npukit.export import export_qdq
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
        sess = ort.InferenceSession(str(export_qdq(compiled, tmp / f"{model_name}_npukit_qdq.onnx")), opts,
                                    providers=["CPUExecutionProvider"])
    ort_s, ort_out = best_time(lambda: sess.run(None, {name: x}), max(runs, 10))

    a = np.asarray(next(iter(npk_out.values()))).ravel()
    b = np.asarray(ort_out[0]).ravel()
    return {"model": model_name, "npukit_compile_s": compile_s, "npukit_run_s": npk_s, "ort_run_s": ort_s,
            "ratio": npk_s / ort_s, "top1_agree": bool(np.argmax(a) == np.argmax(b)),
            "logit_cosine": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)),
            "by_kind": breakdown(compiled, name, x, runs) if by_kind else None}


def quiet_ort_logging() -> None:
    import logging
    logging.getLogger().setLevel(logging.ERROR)   # ORT's quantiser logs through the root logger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet18", "mobilenet_v2"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--by-kind", action="store_true", help="also time the simulator per instruction kind")
    ap.add_argument("--peer-quantiser", action="store_true",
                    help="time onnxruntime's own quantize_static model instead of npukit's export")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    quiet_ort_logging()
    print(f"machine: {machine_line()}")
    from npukit.sim import gemm_int8
    print("simulator products: " + ("int8 GEMM (onnxruntime MatMulInteger, exact on this CPU)" if gemm_int8.backend(1)
                                    else "float32 BLAS (this CPU's int8 GEMM failed the exactness probe)"))
    print("ORT side: " + ("onnxruntime quantize_static QDQ model of the same float network"
                          if args.peer_quantiser else "npukit's own int8 model, exported with npukit export --qdq")
          + "; 2 intra-op threads")
    with tempfile.TemporaryDirectory() as tmpdir:
        results = [bench(m, args.runs, Path(tmpdir), args.peer_quantiser, args.by_kind) for m in args.models]
    rows = [[r["model"], f"{r['npukit_run_s'] * 1e3:.1f}", f"{r['ort_run_s'] * 1e3:.1f}", f"{r['ratio']:.1f}x",
             "met" if r["ratio"] <= TARGET else "NOT met", f"{r['logit_cosine']:.3f}", r["npukit_compile_s"]]
            for r in results]
    print(table(["model (224x224)", "npukit run ms", "ORT int8 ms", "npukit/ORT", f"target <= {TARGET:.0f}x",
                 "logit cosine", "npukit compile s"], rows,
                "\n== one inference, bit-exact int8 simulation (npu-m) vs onnxruntime int8 =="))
    for r in results:
        if r["by_kind"]:
            kinds = sorted(r["by_kind"].items(), key=lambda kv: -kv[1][1])
            print(f"\n{r['model']}, simulator time per instruction kind (best of {args.runs}): "
                  + ", ".join(f"{k} {s * 1e3:.1f} ms / {n}" for k, (n, s) in kinds))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
