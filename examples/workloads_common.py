"""What every workload example prints and plots: per-preset cycles, latency and energy."""

from __future__ import annotations

import json
from pathlib import Path

from npukit.report.units import energy_uj, seconds

PRESETS = ("npu-s", "npu-m")


def hardware_row(prog) -> dict:
    """Cycles, latency and energy of one inference of a compiled model, and where ops ran."""
    d = prog.profile().to_dict()
    layers = prog.program.layers
    return {"cycles": int(d["total_cycles"]), "latency_ms": float(d["latency_ms"]),
            "energy_uj": float(d["energy_uj"]), "npu_layers": sum(layer.target == "npu" for layer in layers),
            "host_layers": sum(layer.target == "host" for layer in layers)}


def print_hardware(rows: dict[str, dict]) -> None:
    print(f"{'preset':8s} {'cycles':>12s} {'latency':>10s} {'energy':>10s} {'NPU/host layers':>16s}")
    for arch, r in rows.items():
        print(f"{arch:8s} {r['cycles']:12,d} {seconds(r['latency_ms'] * 1e-3):>10s} {energy_uj(r['energy_uj']):>10s} "
              f"{r['npu_layers']:>9d}/{r['host_layers']}")


def save_report(path: Path | None, title: str, metrics: dict[str, float], hw: dict[str, dict],
                extra: dict | None = None) -> None:
    """A PNG (metric bars, latency and energy per preset) and the same figures as JSON."""
    if path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].bar(list(metrics), [100 * v for v in metrics.values()], color=["#4c72b0", "#dd8452", "#55a868"][:len(metrics)])
    axes[0].set_ylabel("%")
    axes[0].set_ylim(0, 105)
    for i, v in enumerate(metrics.values()):
        axes[0].text(i, 100 * v + 1, f"{100 * v:.1f}", ha="center")
    for ax, key, unit in ((axes[1], "latency_ms", "ms / inference"), (axes[2], "energy_uj", "uJ / inference")):
        ax.bar(list(hw), [r[key] for r in hw.values()], color="#8172b2")
        ax.set_ylabel(unit)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps({"title": title, "metrics": metrics, "hardware": hw,
                                                     **(extra or {})}, indent=1))
    print(f"wrote {path} and {path.with_suffix('.json')}")
