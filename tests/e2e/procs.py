"""Running the real `fitglue` command as a subprocess, on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FITGLUE_", "STRAVA_", "SLACK_"))}
    # A process that hangs on its way out prints every thread's stack when stop() aborts it (SIGABRT),
    # so a shutdown that never ends shows where it waits instead of only "exit -9".
    env["PYTHONFAULTHANDLER"] = "1"
    env.update(extra)
    return env


def fitglue(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


class ServeProcess:
    """`fitglue serve --port PORT ARGS…`, or with command="worker" `fitglue worker --health-port PORT`
    (ready when its /readyz answers 200 either way)."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int, args: tuple[str, ...] = (),
                 command: str = "serve") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"{command}-{port}-{time.time_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - lives as long as the process
        port_option = "--health-port" if command == "worker" else "--port"
        self.proc = subprocess.Popen([sys.executable, "-m", "service", command, port_option, str(port), *args],
                                     env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    async def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.output()}")
                try:
                    async with http.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"serve not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    async def stopped(self, sig: int | None = None, timeout: float = 15) -> int:
        """`stop` without blocking the event loop: a test's in-process stand-in or receiver must
        keep answering while the service shuts down (its calls in flight would otherwise hang
        until their timeouts, and the shutdown past `timeout`: killed, exit -9)."""
        return await asyncio.to_thread(self.stop, sig, timeout)

    def stop(self, sig: int | None = None, timeout: float = 15) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGABRT)  # faulthandler: the stacks go to the log
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._log.close()
        return self.proc.returncode
