"""Every numeric arch key is bounded by a named limit (npukit.limits), typed strictly, and an
arch at the bounds' extremes compiles, times and runs (or refuses with a one-line error)."""
import math

import numpy as np
import pytest

import npukit
from npukit import limits as L
from npukit.arch import load_arch
from npukit.errors import ArchError, ScheduleError
from npukit.testing.fixtures import run_cli

DIGITS = "examples/digits/digits_cnn.onnx"


@pytest.fixture(scope="module")
def base():
    return load_arch("npu-m")


@pytest.mark.parametrize("key, value, limit", [
    ("sram.abuf_kib", 2 ** 40, L.SRAM_KIB),
    ("sram.wbuf_kib", L.SRAM_KIB.value + 1, L.SRAM_KIB),
    ("sram.banks", 2048, L.SRAM_BANKS),
    ("clock_mhz", 2 ** 31, L.CLOCK_MHZ),
    ("clock_mhz", 1e-300, L.MIN_CLOCK_MHZ),
    ("mxu.rows", 10 ** 400, L.ARRAY_DIM),
    ("vpu.lanes", 1 << 20, L.VPU_LANES),
    ("vpu.pipeline_depth", 5000, L.PIPELINE_DEPTH),
    ("dma.channels", 65, L.DMA_CHANNELS),
    ("dma.setup_cycles", 2 ** 62, L.DMA_SETUP_CYCLES),
    ("dma.decode_bytes_per_cycle", 1e-300, L.MIN_DECODE_RATE),
    ("regions.dram.bandwidth_gbps", 1e-300, L.MIN_BANDWIDTH_GBPS),
    ("regions.dram.bandwidth_gbps", 1e300, L.MAX_BANDWIDTH_GBPS),
    ("regions.dram.size_mib", 1e300, L.REGION_MIB),
    ("regions.dram.latency_ns", 1e300, L.LATENCY_NS),
    ("regions.dram.energy_pj_per_byte", 1e300, L.ENERGY_PJ),
    ("host.cpu_mhz", 1e-300, L.MIN_CLOCK_MHZ),
    ("host.pj_per_cycle", 1e300, L.ENERGY_PJ),
    ("host.cycles_per_element", {"conv": 1e300}, L.HOST_CYCLES),
    ("tech.pj_per_mac", 1e308, L.ENERGY_PJ),
    ("tech.um2_per_mac", 1e300, L.AREA_UM2),
    ("tech.mm2_per_sram_kib", 1e10, L.AREA_UM2),
    ("tech.static_mw", 1e308, L.STATIC_MW),
])
def test_a_key_beyond_its_limit_is_refused_naming_the_limit(base, key, value, limit):
    with pytest.raises(ArchError) as e:
        base.replace({key: value})
    msg = str(e.value)
    assert limit.name in msg and key.split(".")[-1] in msg and "\n" not in msg and len(msg) < 200


def test_too_many_regions_names_the_limit(base):
    region = {"size_mib": 1, "bandwidth_gbps": 1.0, "latency_ns": 1}
    data = base.to_dict()
    data["regions"] = [{"name": f"r{i}", **region} for i in range(L.REGIONS.value + 1)]
    with pytest.raises(ArchError, match=L.REGIONS.name):
        type(base).from_dict(data)


@pytest.mark.parametrize("key, value, problem", [
    ("sram.abuf_kib", 256.0, "valid integer"),    # an int key takes no float, bool or string
    ("mxu.rows", True, "valid integer"),
    ("mxu.cols", "16", "valid integer"),
    ("sram.acc_kib", 0, "greater than 0"),
    ("clock_mhz", math.nan, "finite"),             # a float key takes no NaN or infinity
    ("regions.dram.bandwidth_gbps", math.inf, "finite"),
    ("clock_mhz", 10 ** 400, "integer of 1329 bits"),   # a huge number is named, not printed
])
def test_wrong_type_or_non_finite_value_is_one_short_line(base, key, value, problem):
    with pytest.raises(ArchError) as e:
        base.replace({key: value})
    assert problem in str(e.value) and len(str(e.value)) < 200


def test_unknown_key_in_toml_gets_a_suggestion(base):
    with pytest.raises(ArchError, match="did you mean 'clock_mhz'"):
        type(base).from_toml_text(base.to_toml().replace("clock_mhz", "clok_mhz"))


def test_cli_refuses_an_arch_beyond_a_limit(tmp_path, base):
    path = tmp_path / "big.toml"
    path.write_text(base.to_toml().replace("abuf_kib = 256", f"abuf_kib = {2 ** 40}"))
    r = run_cli("archs", "--show", path)
    assert r.returncode == 2 and L.SRAM_KIB.name in r.stderr and len(r.stderr.strip().splitlines()) == 1


# arches at the bounds' extremes: each compiles, times and runs digits, or refuses in one line
EXTREMES = {
    "tiny": {"mxu.rows": 1, "mxu.cols": 1, "vpu.lanes": 1, "sram.abuf_kib": 1, "sram.wbuf_kib": 1,
             "sram.acc_kib": 1, "sram.banks": 1024},
    "slowest": {"clock_mhz": 1, "regions.dram.bandwidth_gbps": 0.001, "regions.dram.latency_ns": 1e6,
                "dma.decode_bytes_per_cycle": 0.01, "host.cpu_mhz": 1},
    # the fewest bytes per cycle: a rate the compiler once rounded to 0 (ZeroDivisionError)
    "fast_clock_slow_memory": {"clock_mhz": L.CLOCK_MHZ.value, "regions.dram.bandwidth_gbps": 0.001,
                               "vpu.pipeline_depth": 1024, "dma.setup_cycles": 1_000_000},
    "fastest_memory": {"clock_mhz": 1, "regions.dram.bandwidth_gbps": 100_000,
                       "dma.decode_bytes_per_cycle": 1 << 20, "regions.dram.latency_ns": 0},
}


@pytest.mark.parametrize("name", EXTREMES)
def test_extreme_arch_compiles_times_and_runs(base, name):
    arch = base.replace(EXTREMES[name])
    m = npukit.compile(DIGITS, arch, {"x": (1, 1, 8, 8)}, sqnr=False, random_samples=1)
    p = m.profile()
    assert p.total_cycles > 0 and math.isfinite(p.latency_ms) and math.isfinite(p.energy_uj)
    out = m.run({"x": np.zeros((1, 1, 8, 8), np.float32)})
    assert all(np.isfinite(v).all() for v in out.values())


def test_region_too_small_for_the_model_is_a_schedule_error(base):
    arch = base.replace({"regions.dram.size_mib": 1 / 1024})
    with pytest.raises(ScheduleError, match="region 'dram' needs"):
        npukit.compile(DIGITS, arch, {"x": (1, 1, 8, 8)}, sqnr=False, random_samples=1)
