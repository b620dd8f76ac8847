"""Is this machine's page cache slow to write into after a pause? (Some VMs return freed memory to the host.)

    python benchmarks/page_cache_probe.py

Writes 1 GiB and deletes it, repeatedly, after pauses of different lengths, and prints the write
speed and system CPU time of each pass. On a machine that keeps its freed memory, every pass is
about as fast; where freed page-cache memory goes back to the host within seconds, the passes after
a pause are several times slower. ``download.py`` warms up right before each copy for that reason.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path


def write_pass(path: Path, size: int = 1 << 30) -> tuple[float, float]:
    block = b"\0" * (1 << 20)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for _ in range(size // len(block)):
            f.write(block)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    path.unlink()
    return size / wall / 2**20, after.ru_stime - before.ru_stime


def main() -> int:
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as folder:
        path = Path(folder) / "probe"
        write_pass(path)
        for pause in (0, 0, 1, 3, 10, 0):
            time.sleep(pause)
            speed, system = write_pass(path)
            print(f"after a {pause:>2} s pause: {speed:6.0f} MiB/s, {system:.2f} s of system CPU per GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
