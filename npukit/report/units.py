"""Times and energies in auto-scaled units: 905 cycles read as "905 cycles (1.13 us)", not "0.001 ms"."""
from __future__ import annotations

TIME_UNITS = (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0))
ENERGY_UNITS = (("pJ", 1e-12), ("nJ", 1e-9), ("uJ", 1e-6), ("mJ", 1e-3), ("J", 1.0))


def scaled(value: float, units: tuple[tuple[str, float], ...]) -> str:
    """`value` (in base units) with three significant digits in the largest unit it is >= 1 of."""
    if value == 0:
        return f"0 {units[0][0]}"
    for i, (name, size) in enumerate(units):
        v = value / size
        last = i == len(units) - 1
        if last or abs(float(f"{v:.3g}")) < 1000:
            return f"{v:.3g} {name}"
    raise AssertionError("unreachable")


def seconds(s: float) -> str:
    return scaled(s, TIME_UNITS)


def energy_uj(uj: float) -> str:
    """An energy given in microjoules (the profile's unit)."""
    return scaled(uj * 1e-6, ENERGY_UNITS)


def cycles(n: int, clock_mhz: float) -> str:
    """"905 cycles (1.13 us)": a cycle count and its time at the clock."""
    return f"{n:,} cycles ({seconds(n / (clock_mhz * 1e6))})"
