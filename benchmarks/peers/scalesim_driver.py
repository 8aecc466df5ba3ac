"""Run SCALE-Sim 3 on a list of conv layers and print per-layer cycles as JSON.

Runs inside the SCALE-Sim venv (benchmarks/setup_peers.sh). Usage:
    python scalesim_driver.py SPEC.json
SPEC: {"rows", "cols", "dataflow", "layers": [{"name", "ifmap_h", "ifmap_w", "kh", "kw", "c", "k",
"stride"}]}. Uses the Python API with save_disk_space=True (no traces) and CALC interface
bandwidth (stall-free), so each layer's cycles are its compute cycles.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from procstat import peak_rss_mib  # beside this script

CONFIG = """[general]
run_name = npukit_bench

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 6144
FilterSramSzkB: 6144
OfmapSramSzkB: 2048
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    from scalesim.scale_sim import scalesim

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "arch.cfg").write_text(CONFIG.format(**spec))
        topo = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
        layout = ["Layer name, IFMAP SRAM Intraline Factor, a, b, c, d, e, f,"]
        for i, L in enumerate(spec["layers"]):
            topo.append(f"L{i}, {L['ifmap_h']}, {L['ifmap_w']}, {L['kh']}, {L['kw']}, {L['c']}, {L['k']}, "
                        f"{L['stride']},")
            layout.append(f"L{i}, 1, 1, 1, 1, 1, 1, 1,")
        (d / "topo.csv").write_text("\n".join(topo) + "\n")
        (d / "layout.csv").write_text("\n".join(layout) + "\n")
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=str(d / "arch.cfg"),
                           topology=str(d / "topo.csv"), layout=str(d / "layout.csv"))
            sim.run_scale(top_path=str(d / "out"))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        layers = []
        for L, obj in zip(spec["layers"], sim.runner.single_layer_sim_object_list):
            _, total, stall, *_ = obj.get_compute_report_items()
            layers.append({"name": L["name"], "total_cycles": int(total), "stall_cycles": int(stall),
                           "compute_cycles": int(total - stall)})
    print(json.dumps({"tool": "scalesim", "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib(), "layers": layers}))


if __name__ == "__main__":
    main()
