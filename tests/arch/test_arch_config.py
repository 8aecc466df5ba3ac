"""Arch config: presets, TOML round trip, dotted replace, and one-line ArchErrors naming the key."""
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.arch import Arch, list_presets, load_arch
from npukit.arch.catalog import summary_lines
from npukit.errors import ArchError

PRESETS = ["npu-dc", "npu-l", "npu-m", "npu-s", "u55-256"]

MINIMAL = """
name = "tiny"
clock_mhz = 100
[mxu]
rows = 4
cols = 4
[vpu]
lanes = 4
[sram]
abuf_kib = 1
wbuf_kib = 1
acc_kib = 1
banks = 1
[[regions]]
name = "dram"
size_mib = 16
bandwidth_gbps = 1.0
latency_ns = 100
"""


def test_list_presets():
    assert list_presets() == PRESETS



def test_archs_lines_read_from_the_toml_are_the_validated_archs():
    """`npukit archs` reads the preset TOMLs without the schema: each line must show what the
    validated Arch holds (defaults and derived values included)."""
    def line(a: Arch) -> str:
        regions = ", ".join(f"{r.name} {r.bandwidth_gbps:g} GB/s" for r in a.regions)
        return (f"{a.name:9s} {a.mxu.rows}x{a.mxu.cols} MXU ({a.macs_per_cycle} MACs) @ {a.clock_mhz:g} MHz, "
                f"VPU {a.vpu.lanes} lanes, ABUF/WBUF/ACC {a.sram.abuf_kib}/{a.sram.wbuf_kib}/{a.sram.acc_kib} KiB, {regions}")
    assert summary_lines() == [line(load_arch(name)) for name in PRESETS]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trips_through_toml(name, tmp_path):
    arch = load_arch(name)
    assert arch.name == name
    text = arch.to_toml()
    assert tomllib.loads(text) == arch.to_dict()
    again = Arch.from_toml_text(text)
    assert again == arch and again.fingerprint == arch.fingerprint
    path = tmp_path / "a.toml"
    path.write_text(text)
    assert load_arch(path) == arch and load_arch(str(path)) == arch


def test_minimal_config_gets_documented_defaults():
    a = Arch.from_toml_text(MINIMAL)
    assert (a.mxu.dataflow, a.mxu.fold_overlap, a.vpu.pipeline_depth) == ("auto", True, 4)
    assert (a.dma.channels, a.dma.setup_cycles) == (1, 0)
    assert (a.placement.weights, a.placement.activations, a.placement.scratch) == ("dram",) * 3
    assert a.region("dram").kind == "dram" and a.tech.node == "45nm"
    assert a.host.cpu_mhz == 1000.0 and a.host.cycles("conv", 10) == 10 * a.host.cycles_per_element["conv"]


def test_convenience_properties_closed_form():
    a = load_arch("npu-m")
    assert a.macs_per_cycle == 16 * 16
    assert (a.abuf_bytes, a.wbuf_bytes, a.acc_bytes) == (256 * 1024, 128 * 1024, 64 * 1024)
    assert a.region_bytes_per_cycle("dram") == pytest.approx(8.0e9 / 800e6)  # 10 B/cycle
    assert a.region_latency_cycles("dram") == pytest.approx(100e-9 * 800e6)  # 80 cycles
    assert a.placed("weights").name == "dram"
    with pytest.raises(ArchError, match="no region 'hbm'"):
        a.region("hbm")


def test_u55_256_matches_vela_defaults():
    # Oracle: Vela's vela.ini [System_Config.Ethos_U55_High_End_Embedded] and
    # architecture_features.py (Ethos-U55: 64-bit AXI, bandwidth = width/8 * clock_scale * core_clock;
    # latencies in core cycles; Ethos_U55_256: 256 MACs, 8 elementwise units, 48 x 1 KiB SHRAM banks).
    core_clock, axi_bytes = 500e6, 64 / 8
    sram_scale, flash_scale, sram_lat, flash_lat = 1.0, 0.125, 32, 64
    a = load_arch("u55-256")
    assert a.clock_mhz * 1e6 == core_clock and a.macs_per_cycle == 256 and a.vpu.lanes == 8
    assert a.sram.abuf_kib + a.sram.wbuf_kib + a.sram.acc_kib == 48
    sram, flash = a.region("sram"), a.region("flash")
    assert sram.bandwidth_gbps * 1e9 == axi_bytes * sram_scale * core_clock
    assert flash.bandwidth_gbps * 1e9 == axi_bytes * flash_scale * core_clock
    assert sram.latency_ns == pytest.approx(sram_lat / core_clock * 1e9)
    assert flash.latency_ns == pytest.approx(flash_lat / core_clock * 1e9)
    assert a.region_bytes_per_cycle("sram") == axi_bytes * sram_scale
    # Shared_Sram: const (weights) on AXI1 = flash, arena (activations) and cache on AXI0 = SRAM
    assert (a.placement.weights, a.placement.activations, a.placement.scratch) == ("flash", "sram", "sram")
    assert sram.size_bytes == flash.size_bytes == 1 << 32  # Vela's U55 address space


def test_replace_validates_and_leaves_original_alone():
    a = load_arch("npu-m")
    b = a.replace({"mxu.rows": 32, "sram.abuf_kib": 128})
    assert (b.mxu.rows, b.sram.abuf_kib, b.macs_per_cycle) == (32, 128, 32 * 16)
    assert (a.mxu.rows, a.sram.abuf_kib) == (16, 256)
    assert b.fingerprint != a.fingerprint
    c = a.replace(**{"regions.dram.bandwidth_gbps": 16.0, "clock_mhz": 400})
    assert c.region_bytes_per_cycle("dram") == pytest.approx(16e9 / 400e6)
    assert a.replace({}) == a and a.replace({}).fingerprint == a.fingerprint


@pytest.mark.parametrize("overrides, pattern", [
    ({"mxu.rows": 0}, r"mxu\.rows: .*greater than 0"),
    ({"mxu.cols": -3}, r"mxu\.cols"),
    ({"mxu.rows": "16"}, r"mxu\.rows: .*valid integer"),
    ({"mxu.rows": 16.5}, r"mxu\.rows"),
    ({"mxu.fold_overlap": 1}, r"mxu\.fold_overlap"),
    ({"mxu.dataflow": "rs"}, r"mxu\.dataflow"),
    ({"clock_mhz": 0}, r"clock_mhz"),
    ({"mxu.rowz": 4}, r"unknown key 'mxu\.rowz'"),
    ({"regions.flash.size_mib": 4}, r"no region named 'flash'"),
    ({"regions.dram.latency_ns": -1}, r"regions\['dram'\]\.latency_ns"),
    ({"placement.weights": "flash"}, r"placement\.weights: names region 'flash'"),
    ({"sram.acc_kib": 1, "sram.wbuf_kib": 1, "mxu.rows": 64, "mxu.cols": 64},
     r"sram\.wbuf_kib: 1 KiB cannot hold one 64x64"),
    ({"mxu.rows": 128, "mxu.cols": 128, "sram.acc_kib": 32}, r"sram\.acc_kib: .*needs 64 KiB"),
    ({"sram.banks": 3}, r"sram\.abuf_kib: .*3 banks"),
    ({"tech.node": "7nm"}, r"tech\.node: unknown process node '7nm'"),
    ({"host.cycles_per_element": {"convv": 1.0}}, r"host\.cycles_per_element: unknown op class 'convv'"),
])
def test_bad_values_raise_arch_error_naming_the_key(overrides, pattern):
    with pytest.raises(ArchError, match=pattern) as info:
        load_arch("npu-m").replace(overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, pattern", [
    (MINIMAL + "\n[mxu2]\nrows = 1\n", r"mxu2: unknown key"),
    (MINIMAL.replace("lanes = 4", "lanes = 4\nwidth = 3"), r"vpu\.width: unknown key"),
    (MINIMAL.replace("[vpu]\nlanes = 4\n", ""), r"vpu: missing required key"),
    (MINIMAL.replace('bandwidth_gbps = 1.0', 'bandwidth_gbps = "fast"'),
     r"regions\['dram'\]\.bandwidth_gbps: .*valid number"),
    (MINIMAL + '\n[[regions]]\nname = "dram"\nsize_mib = 1\nbandwidth_gbps = 1.0\nlatency_ns = 1\n',
     r"region name 'dram' appears twice"),
    (MINIMAL.replace('name = "dram"', 'name = "Bad Name"'), r"regions\['Bad Name'\]\.name: String should match"),
    ("name = ", r"invalid TOML"),
    ("regions = 3\n" + MINIMAL.replace("[[regions]]", "[r]"), r"regions"),
])
def test_bad_toml_raises_arch_error(text, pattern):
    with pytest.raises(ArchError, match=pattern):
        Arch.from_toml_text(text)


def test_unknown_preset_or_missing_file():
    with pytest.raises(ArchError, match="neither a preset"):
        load_arch("npu-xl")
    with pytest.raises(ArchError, match="top level"):
        Arch.from_dict([1, 2])  # type: ignore[arg-type]


def test_fingerprint_ignores_toml_layout_but_not_values():
    a = Arch.from_toml_text(MINIMAL)
    reordered = MINIMAL.replace("rows = 4\ncols = 4", "cols = 4\nrows = 4") + "\n# comment\n"
    assert Arch.from_toml_text(reordered).fingerprint == a.fingerprint
    assert len(a.fingerprint) == 64 and int(a.fingerprint, 16) >= 0
    assert a.replace({"vpu.pipeline_depth": 5}).fingerprint != a.fingerprint


def test_fingerprint_is_remembered_but_follows_copies_with_updates():
    import hashlib
    import json
    a = Arch.from_toml_text(MINIMAL)
    first = a.fingerprint
    assert a.fingerprint == first == hashlib.sha256(json.dumps(
        a.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert "fingerprint" not in a.to_dict() and a == Arch.from_toml_text(MINIMAL)
    faster = a.model_copy(update={"clock_mhz": 2 * a.clock_mhz})
    assert faster.fingerprint == Arch.from_dict(faster.to_dict()).fingerprint != first
    assert a.model_copy().fingerprint == first


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 64), cols=st.integers(1, 64), kib=st.integers(64, 4096),
       clock=st.floats(1, 3000), bw=st.floats(0.01, 1000), df=st.sampled_from(["auto", "ws", "os"]),
       overlap=st.booleans(), name=st.text(min_size=1, max_size=20))
def test_random_valid_archs_round_trip(rows, cols, kib, clock, bw, df, overlap, name):
    a = load_arch("npu-m").replace({
        "name": name, "mxu.rows": rows, "mxu.cols": cols, "mxu.dataflow": df,
        "mxu.fold_overlap": overlap, "sram.acc_kib": kib, "clock_mhz": clock,
        "regions.dram.bandwidth_gbps": bw})
    again = Arch.from_toml_text(a.to_toml())
    assert again == a and again.fingerprint == a.fingerprint


@pytest.mark.parametrize("name", ["\x7f", 'quote " and \\ backslash', "line\nbreak\ttab", "\u00e9\u2028", "\x00"])
def test_awkward_names_survive_toml(name):
    a = load_arch("npu-s").replace(name=name)
    assert Arch.from_toml_text(a.to_toml()).name == name
