"""Quantise an ONNX model with NNCF (ONNX backend: default preset, fast bias correction) and
write the QDQ model; prints {"nncf": version, "quantize_s": seconds} as JSON.

Runs inside the NNCF venv (`bash benchmarks/setup_peers.sh nncf`). Usage:
    python nncf_driver.py MODEL.onnx CALIB.npz OUT.onnx
CALIB.npz holds each model input stacked over the calibration samples ([N, *input shape]);
sample i feeds {input: array[i]}.
"""
from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import nncf
    import numpy as np
    import onnx
    model_path, calib_path, out_path = sys.argv[1:4]
    model = onnx.load(model_path)
    with np.load(calib_path) as z:
        stacked = {k: z[k] for k in z.files}
    n = len(next(iter(stacked.values())))
    samples = [{k: np.asarray(v[i]) for k, v in stacked.items()} for i in range(n)]   # 0-d stays an array
    t0 = time.perf_counter()
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=n, fast_bias_correction=True)
    seconds = time.perf_counter() - t0
    onnx.save(quantized, out_path)
    print(json.dumps({"nncf": nncf.__version__, "quantize_s": seconds}))


if __name__ == "__main__":
    main()
