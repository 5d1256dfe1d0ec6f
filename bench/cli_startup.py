"""Wall time of ``sqlsentinel --help`` (target: under 0.25 s; the public 0.1.x peer takes 0.47 s).

Usage: python bench/cli_startup.py [RUNS]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main(runs: int = 20) -> None:
    exe = shutil.which("sqlsentinel") or str(Path(sys.executable).parent / "sqlsentinel")
    subprocess.run([exe, "--help"], check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    print(f"sqlsentinel --help over {runs} runs:")
    print(f"  median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (target < 250 ms)")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
