"""Technology table: cited values, overrides, and monotonicity of area and energy."""
import pytest

from npukit.arch import area_mm2, energy_table, load_arch
from npukit.arch.tech import NODE_45NM, REGION_KIND_PJ_PER_BYTE, sram_pj_per_byte


def test_keynote_45nm_values():
    # Oracle: ISSCC 2014 keynote table (45 nm): 8b mult 0.2 pJ / 282 um^2, 32b add 0.1 pJ /
    # 137 um^2, 32b mult 3.1 pJ / 3495 um^2; 64-bit SRAM read 10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB.
    e = energy_table(load_arch("npu-m"))
    assert e.pj_per_mac == pytest.approx(0.2 + 0.1)
    assert e.pj_per_vpu_mul == pytest.approx(3.1) and e.pj_per_vpu_op == pytest.approx(0.1)
    for kib, pj_per_64bit in [(8, 10.0), (32, 20.0), (1024, 100.0)]:
        assert sram_pj_per_byte(NODE_45NM, kib) == pytest.approx(pj_per_64bit / 8)
    assert REGION_KIND_PJ_PER_BYTE["dram"] == pytest.approx(1300 / 8)
    a = load_arch("npu-m")
    assert area_mm2(a)["mxu"] == pytest.approx(256 * (282 + 137) * 1e-6)
    assert area_mm2(a)["vpu"] == pytest.approx(16 * (3495 + 137) * 1e-6)


def test_buffer_energy_uses_bank_size():
    a = load_arch("npu-m")  # 256 KiB ABUF in 8 banks -> 32 KiB banks
    assert energy_table(a).pj_per_abuf_byte == pytest.approx(20.0 / 8)
    # 16 KiB banks: halfway (in log2 size) between the 8 KiB and 32 KiB points
    assert energy_table(a.replace({"sram.banks": 16})).pj_per_abuf_byte == pytest.approx(15.0 / 8)


def test_region_energy_defaults_and_explicit_value():
    s = load_arch("npu-s")
    e = energy_table(s)
    assert dict(e.pj_per_region_byte) == {"sram": 100 / 8, "flash": REGION_KIND_PJ_PER_BYTE["flash"]}
    m = load_arch("npu-m").replace({"regions.dram.energy_pj_per_byte": 20.0})
    assert energy_table(m).pj_per_region_byte["dram"] == 20.0


def test_tech_overrides_win():
    a = load_arch("npu-m").replace({"tech.pj_per_mac": 1.5, "tech.sram_pj_per_byte": 0.5,
                                    "tech.um2_per_mac": 1000.0, "tech.mm2_per_sram_kib": 0.01,
                                    "tech.static_mw": 3.0})
    e, area = energy_table(a), area_mm2(a)
    assert e.pj_per_mac == 1.5 and e.pj_per_rf_access == 1.5
    assert e.pj_per_abuf_byte == e.pj_per_wbuf_byte == e.pj_per_acc_byte == 0.5
    assert e.static_mw == 3.0
    assert area["mxu"] == pytest.approx(256 * 1000e-6)
    assert area["sram"] == pytest.approx((256 + 128 + 64) * 0.01)


@pytest.mark.parametrize("preset", ["npu-s", "npu-m", "npu-l", "npu-dc", "u55-256"])
def test_area_parts_sum_to_total(preset):
    area = area_mm2(load_arch(preset))
    assert set(area) == {"mxu", "vpu", "sram", "total"}
    assert area["total"] == pytest.approx(area["mxu"] + area["vpu"] + area["sram"])
    assert all(v > 0 for v in area.values())


def test_area_monotone_in_macs_and_sram():
    base = load_arch("npu-m")
    sizes = [(8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
    mxu = [area_mm2(base.replace({"mxu.rows": r, "mxu.cols": c}))["mxu"] for r, c in sizes]
    assert mxu == sorted(mxu) and len(set(mxu)) == len(mxu)
    totals = [area_mm2(base.replace({"sram.abuf_kib": k}))["total"] for k in (64, 128, 256, 512, 2048)]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)


def test_buffer_energy_monotone_in_sram_size():
    base = load_arch("npu-m")
    per_byte = [energy_table(base.replace({"sram.abuf_kib": k})).pj_per_abuf_byte
                for k in (8, 64, 256, 1024, 8192, 65536, 262144)]
    assert per_byte == sorted(per_byte) and per_byte[-1] > per_byte[0]
    sizes = [0.5, 1, 8, 12, 32, 100, 1024, 4096, 65536]
    points = [sram_pj_per_byte(NODE_45NM, s) for s in sizes]
    assert points == sorted(points)


def test_energy_of_a_fixed_workload_grows_with_array_and_sram():
    # A network's energy = actions x table; bigger buffers cost more per byte, so the same
    # action counts never get cheaper as SRAM grows; MAC energy is per MAC (array-size free).
    def energy(arch):
        e = energy_table(arch)
        return 1e6 * e.pj_per_mac + 1e5 * (e.pj_per_abuf_byte + e.pj_per_wbuf_byte + e.pj_per_acc_byte)
    base = load_arch("npu-m")
    grown = [energy(base.replace({"sram.abuf_kib": k, "sram.wbuf_kib": k, "sram.acc_kib": k}))
             for k in (64, 256, 1024, 4096)]
    assert grown == sorted(grown)
