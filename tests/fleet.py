"""A real fleet for tests: a Redis server of the test's own, ``dramatiq workers`` and
``sqlsentinel scheduler`` processes, all on loopback, each test in its own namespace."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.databases import CI

__all__ = ["FleetHarness", "RedisServer", "fleet", "redis_server"]

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, nothing on disk; can be restarted mid-test."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@dataclass
class FleetHarness:
    """Starts and kills fleet processes; their logs go to files under ``directory``."""

    directory: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.directory / f"{name}-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes.append(process)
        return process

    def worker(self, processes: int = 1, threads: int = 4) -> subprocess.Popen[bytes]:
        args = [str(BIN / "dramatiq"), "workers", "-p", str(processes), "-t", str(threads)]
        return self._start("worker", [*args, "--worker-shutdown-timeout", "5000"])

    def scheduler(self, config: str) -> subprocess.Popen[bytes]:
        return self._start("scheduler", [str(BIN / "sqlsentinel"), "-v", "scheduler", config])

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Kill the process and everything it started (Dramatiq's worker processes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process, signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.directory.glob("*.log"))
        )


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer) -> Iterator[FleetHarness]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "STATE_DB"))}
    env.update(
        REDIS_URL=redis_server.url,
        SENTINEL_NAMESPACE=f"t{uuid.uuid4().hex[:8]}",
        SENTINEL_METRICS="off",
        PYTHONUNBUFFERED="1",
    )
    harness = FleetHarness(tmp_path, env)
    yield harness
    harness.stop_all()
