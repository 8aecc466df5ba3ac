"""Run ZigZag 3.9 on an ONNX workload with its TPU-like accelerator; print cycles as JSON.

Runs inside the ZigZag venv (benchmarks/setup_peers.sh). Usage:
    python zigzag_driver.py MODEL.onnx
Hardware and mapping are the `tpu_like.yaml` files shipped in zigzag/inputs (a 32x32
weight-stationary systolic array, K x C spatial unrolling). ZigZag searches the temporal
mapping of every layer (LOMA, its default engine, lpf_limit 6) and optimises latency.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from procstat import peak_rss_mib  # beside this script


def main() -> None:
    model = sys.argv[1]
    import onnx
    import zigzag
    from zigzag.api import get_hardware_performance_zigzag

    inputs = Path(zigzag.__file__).parent / "inputs"
    accel, mapping = inputs / "hardware" / "tpu_like.yaml", inputs / "mapping" / "tpu_like.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        workload = onnx.shape_inference.infer_shapes(onnx.load(model))   # ZigZag needs typed values
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            logging.disable(logging.CRITICAL)
            energy, latency, cmes = get_hardware_performance_zigzag(
                workload, str(accel), str(mapping), opt="latency", dump_folder=tmp,
                pickle_filename=f"{tmp}/cmes.pickle", loma_show_progress_bar=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    layers = []
    for cme, _ in cmes[0][1]:
        layers.append({"name": str(cme.layer.name), "latency_cycles": float(cme.latency_total2),
                       "ideal_cycles": float(cme.ideal_cycle)})
    print(json.dumps({"tool": "zigzag", "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib(),
                      "latency_cycles": float(latency), "energy_pj": float(energy), "layers": layers}))


if __name__ == "__main__":
    main()
