"""Run a chat service as a real subprocess on a free port, the way it runs in production."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chat_testkit.services import free_port


@dataclass
class ServiceProcess:
    """`chat-<name> --host 127.0.0.1 --port N` with its output in a log file.

    `start()` waits for `/readyz` to answer 200; `kill()` is SIGKILL, `stop()`
    is SIGTERM with a wait, `restart()` starts it again on the same port.
    """

    script: str
    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    ready_path: str = "/readyz"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.script}-{self.port}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        exe = Path(sys.executable).with_name(self.script)
        command = [str(exe), "--host", "127.0.0.1", "--port", str(self.port)]
        log_file = self.log_path.open("ab")
        # A session of its own: a Ctrl-C at the terminal reaches the runner, which then
        # stops each service with SIGTERM, instead of interrupting them all mid-shutdown.
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.script} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}"
                )
            try:
                response = httpx.get(self.url + self.ready_path, timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.script} not ready after {timeout}s ({last}):\n{self.log_text()[-3000:]}"
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def restart(self, timeout: float = 30.0) -> ServiceProcess:
        self.stop()
        return self.start(timeout)


def log_problems(text: str, *, errors_too: bool = True) -> list[str]:
    """Lines of a service log showing a crash (and, with `errors_too`, any error line)."""
    return [
        line[:2000]
        for line in text.splitlines()
        if "Traceback" in line
        or (errors_too and re.search(r'"level": "(error|critical)"', line) is not None)
    ]
