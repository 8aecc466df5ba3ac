"""Compile int8 TFLite models with Vela 5 and print its performance estimate as JSON.

Runs inside the Vela venv (benchmarks/setup_peers.sh). Usage:
    python vela_driver.py REPEATS MODEL.tflite [MODEL.tflite ...]
Vela's defaults: accelerator ethos-u55-256, system config Ethos_U55_High_End_Embedded,
memory mode Shared_Sram (from its bundled Arm/vela.ini). Per-layer figures come from
`--verbose-performance` (the per-layer CSV); bytes per region per layer are Vela's access
cycles x the port's bytes per cycle (SRAM 8 B/cycle, off-chip flash 1 B/cycle), which is how
Vela derives those access cycles; network bytes come from its summary CSV.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

BYTES_PER_CYCLE = {"sram": 8.0, "flash": 1.0}   # 64-bit AXI x clock scale (1.0, 0.125)


def compile_one(model: Path, out_dir: Path, repeats: int) -> dict:
    from ethosu.vela.vela import main as vela_main
    args = [str(model), "--accelerator-config", "ethos-u55-256", "--verbose-performance",
            "--output-dir", str(out_dir)]
    walls = []
    for _ in range(repeats):   # best of `repeats`: in-process compile time, imports excluded
        log = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(io.StringIO()):
            rc = vela_main(args)
        walls.append(time.perf_counter() - t0)
        if rc:
            break
    wall = min(walls)
    if rc:
        return {"model": model.stem, "error": f"vela exited with {rc}: {log.getvalue()[-500:]}"}
    per_layer = list(csv.DictReader((out_dir / f"{model.stem}_per-layer.csv").open()))
    summary = next(csv.DictReader(next(out_dir.glob(f"{model.stem}_summary_*.csv")).open()))
    layers = [{"name": r["Name"], "op": r["Original Operator"], "target": r["Target"],
               "cycles": int(float(r["Op Cycles"])), "npu_cycles": int(float(r["NPU"])),
               "macs": int(float(r["MAC Count"])),
               "bytes": {"sram": round(float(r["SRAM AC"]) * BYTES_PER_CYCLE["sram"]),
                         "flash": round(float(r["OffFlash AC"]) * BYTES_PER_CYCLE["flash"])}}
              for r in per_layer]
    f = float
    return {"model": model.stem, "compile_s": wall, "cycles": int(f(summary["cycles_total"])),
            "npu_cycles": int(f(summary["cycles_npu"])), "macs": int(f(summary["nn_macs"])),
            "bytes": {"sram": int(f(summary["sram_total_bytes"])),
                      "flash": int(f(summary["off_chip_flash_total_bytes"]))},
            "flash_weight_bytes": int(f(summary["off_chip_flash_weight_read_bytes"])),
            "encoded_weight_bytes": int(f(summary["total_npu_encoded_weights"])),
            "original_weight_bytes": int(f(summary["total_original_weights"])),
            "sram_used_kib": f(summary["sram_memory_used"]), "layers": layers}


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        repeats = int(sys.argv[1])
        for i, name in enumerate(sys.argv[2:]):
            results.append(compile_one(Path(name), Path(tmp) / str(i), repeats))
    import ethosu.vela
    print(json.dumps({"tool": "vela", "version": getattr(ethosu.vela, "__version__", "?"), "models": results}))


if __name__ == "__main__":
    main()
