"""Build examples/demo.db from examples/demo.sql (the demo's data, relative to now)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(target: Path = HERE / "demo.db") -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(target) as conn:
        conn.executescript((HERE / "demo.sql").read_text(encoding="utf-8"))
    conn.close()
    return target


if __name__ == "__main__":
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "demo.db")
    print(f"built {path}")
