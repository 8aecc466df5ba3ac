"""Process statistics shared by the peer drivers (they run in the peers' own venvs)."""
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's own RSS high-water mark (VmHWM; ru_maxrss would include the parent's
    RSS at fork time on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
