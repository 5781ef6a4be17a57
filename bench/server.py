"""``python -m service`` in a subprocess: started on a free port, ready when ``/readyz``
answers 200, stopped at the end. The benchmarks and the tests start servers with it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServiceProcess:
    """The service on ``index`` with extra flags ``args``; its output goes to ``log``."""

    def __init__(
        self,
        index: Path,
        *args: str,
        port: int | None = None,
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or index.parent / f"server-{self.port}.log"
        command = [sys.executable, "-m", "service", "--index", str(index), "--port", str(self.port)]
        environment = {**os.environ, "LEXSEARCH_LOG_LEVEL": "warning", **(env or {})}
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [*command, *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=environment
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Seconds from start until ``/readyz`` answered 200 (model and index loaded)."""
        while time.monotonic() - self.started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
