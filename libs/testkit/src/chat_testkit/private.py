"""Redis and RabbitMQ servers of a run's own, on free ports, that it may stop, kill and restart.

The machine's Redis and RabbitMQ are shared by every test run, dev stack and
benchmark on it: a fault test must never stop them. It starts one of these
instead, points the services at it, and stops it by the PID it started.

- `PrivateRedis`: `redis-server` without persistence (a restart empties it, as
  a cache that lost its memory would be), bound to 127.0.0.1.
- `PrivateRabbitMQ`: a RabbitMQ node with a name, ports, configuration,
  plugins file, Erlang cookie and data folders of its own (the system's
  configuration pins the listener to 5672). Run as root, the node runs as the
  `rabbitmq` user, which then owns its folders. Its data survives a restart,
  durable queues included. It registers with the machine's epmd like any node.

A missing program is an error naming what to install, never a silent skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from chat_testkit.services import free_port


class PrivateServerError(RuntimeError):
    pass


def _program(name: str, package: str, *fallbacks: str) -> str:
    for candidate in (shutil.which(name), *fallbacks):
        if candidate and Path(candidate).exists():
            return candidate
    raise PrivateServerError(
        f"{name} is not installed, and a private server needs it: install the Debian "
        f"package {package} (`make system-packages` does)."
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0: ask /proc whether it has exited.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _blocked_folder(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder above `path` that the user `uid` (group `gid`) may not pass through."""
    for folder in reversed(path.resolve().parents):
        st = folder.stat()
        if st.st_uid == uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid == gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return folder
    return None


def _port_closed(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)


class PrivateServer:
    """What both servers share: a folder, a port, a process and its life cycle."""

    kind = "server"  # names it in messages and in its default folder

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        # By default a new folder under the system's temporary folder, which every user can
        # reach (a RabbitMQ node runs as another user).
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"private-{self.kind}-"))
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"

    # --- what each kind defines -------------------------------------------------------------

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def answers(self) -> bool:
        """The server is up and speaks its protocol (not merely a bound port)."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server's own process (for a wrapper script, the one it runs)."""
        if self.process is None or self.process.poll() is not None:
            return None
        return self.process.pid

    @property
    def url(self) -> str:
        raise NotImplementedError

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> PrivateServer:
        if self.running:
            raise PrivateServerError(f"the private {self.kind} is already running")
        command, env = self.command()
        with self.log_path.open("ab") as log:
            # A session of its own: a Ctrl-C at the terminal does not reach it, the owner stops it.
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrivateServerError(
                    f"the private {self.kind} exited with {self.process.returncode}:\n"
                    f"{self.log_tail()}"
                )
            if self.answers():
                return self
            time.sleep(0.1)
        self.kill()
        raise PrivateServerError(
            f"the private {self.kind} did not answer on port {self.port} within {timeout:g} s:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it is still there after `timeout`."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: gone at once, as a crashed machine would be."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 60.0, *, down: float = 0.0) -> PrivateServer:
        """Stop it, stay down `down` seconds, start it again on the same port and folders."""
        self.stop()
        time.sleep(down)
        return self.start(timeout)

    def close(self) -> None:
        """Stop it and delete its folder."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            target = self.pid or process.pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, sig)
            if not _wait_gone(target, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(target, signal.SIGKILL)
                _wait_gone(target, 10.0)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                # The wrapper outlived its server: end the session this object started.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.process = None
        _port_closed(self.port, 10.0)

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def __enter__(self) -> PrivateServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrivateRedis(PrivateServer):
    kind = "redis"

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self.exe = _program("redis-server", "redis-server")
        super().__init__(workdir, port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            self.exe,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(self.workdir), "--daemonize", "no"),
        ], dict(os.environ)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


# The first bytes of an AMQP 0-9-1 connection; a booted broker answers with connection.start.
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class PrivateRabbitMQ(PrivateServer):
    kind = "rabbitmq"

    def __init__(
        self, workdir: Path | None = None, port: int | None = None, *, name_prefix: str = "private"
    ) -> None:
        self.script = self._server_script()
        super().__init__(workdir, port)
        self.dist_port = free_port()
        self.node = f"{name_prefix}{uuid.uuid4().hex[:8]}@localhost"
        self.as_rabbitmq = os.geteuid() == 0
        self.runuser = _program("runuser", "util-linux") if self.as_rabbitmq else ""
        self._prepare()

    @staticmethod
    def _server_script() -> str:
        found = _program(
            "rabbitmq-server", "rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"
        )
        # Debian's /usr/sbin wrapper sends the node's output to the system node's log file and
        # switches user itself: the script it wraps takes the environment as given.
        real = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        if found.startswith("/usr/sbin/") and real.exists():
            return str(real)
        return found

    def _prepare(self) -> None:
        w = self.workdir
        for folder in ("home", "mnesia", "log"):
            (w / folder).mkdir(exist_ok=True)
        (w / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users.guest = true\n"
        )
        # No plugins: the management plugin would want the shared node's port 15672.
        (w / "enabled_plugins").write_text("[].\n")
        # Replaces /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node.
        (w / "rabbitmq-env.conf").write_text("")
        cookie = w / "home" / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        if self.as_rabbitmq:
            try:
                entry = pwd.getpwnam("rabbitmq")
            except KeyError:
                raise PrivateServerError(
                    "there is no rabbitmq user to run a private RabbitMQ node as: install the "
                    "Debian package rabbitmq-server (`make system-packages` does)."
                ) from None
            blocked = _blocked_folder(w, entry.pw_uid, entry.pw_gid)
            if blocked is not None:
                raise PrivateServerError(
                    f"the rabbitmq user cannot reach {w} ({blocked} is closed to it): give "
                    "a folder it can reach, or none for one under the temporary folder."
                )
            for path in [w, *w.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "rabbit.pid"

    @property
    def pid(self) -> int | None:
        """The Erlang VM's PID (the script that starts it only waits for it)."""
        if not self.running:
            return None
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pid_file.read_text().strip())
            if _alive(pid):
                return pid
        return None

    def node_env(self) -> dict[str, str]:
        w = self.workdir
        return {
            "HOME": str(w / "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(w / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(w / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(w / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(w / "mnesia"),
            "RABBITMQ_LOG_BASE": str(w / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def command(self) -> tuple[list[str], dict[str, str]]:
        # Nothing of the caller's RabbitMQ or Erlang settings may leak into this node.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        node = self.node_env()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        if not self.as_rabbitmq:
            return [self.script], {**base, **node}
        assignments = [f"{k}={v}" for k, v in node.items()]
        return [self.runuser, "-u", "rabbitmq", "--", "env", *assignments, self.script], base

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(_AMQP_HEADER)
                return s.recv(1) == b"\x01"  # a method frame
        except OSError:
            return False

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        super()._end(sig, timeout)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
