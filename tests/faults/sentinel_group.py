"""A Redis Sentinel group on loopback for tests: a replica of a given primary and three sentinels.

Real ``redis-server`` processes: the replica with ``--replicaof``, each sentinel as ``redis-sentinel``
(Debian's package) or, without it, ``redis-server --sentinel``. Sentinels rewrite their configuration
file, so each gets its own in the group's directory.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from riskd.daemon.embedded import RedisServer, answers, free_port, redis_binary

SERVICE = "riskd-primary"


class SentinelGroup:
    """A replica of ``primary_port`` and three sentinels monitoring it as :data:`SERVICE` (quorum 2,
    down after ``down_after_ms``)."""

    def __init__(self, primary_port: int, directory: Path, *, down_after_ms: int = 1000) -> None:
        self.primary_port = primary_port
        self.dir = directory
        self.down_after_ms = down_after_ms
        self.replica = RedisServer(
            data_dir=directory / "replica",
            persist=True,
            extra_args=("--replicaof", "127.0.0.1", str(primary_port)),
        )
        self.ports = [free_port() for _ in range(3)]
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL riskd is configured with."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self, timeout: float = 20.0) -> SentinelGroup:
        """Start the replica, wait for its first sync, start the sentinels, wait until they see it."""
        self.replica.start()
        self._wait(self._replica_synced, timeout, "the replica's first sync")
        binary = shutil.which("redis-sentinel")
        for i, port in enumerate(self.ports):
            d = self.dir / f"sentinel-{i}"
            d.mkdir(parents=True, exist_ok=True)
            conf = d / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d / 'sentinel.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            args = [binary, str(conf)] if binary else [str(redis_binary()), str(conf), "--sentinel"]
            self._procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(
            lambda: all(answers("127.0.0.1", p) for p in self.ports), timeout, "the sentinels to answer"
        )
        self._wait(self._sentinels_see_replica, timeout, "the sentinels to find the replica")
        return self

    def master_port(self) -> int:
        """The primary's port as the first answering sentinel reports it."""
        for port in self.ports:
            try:
                client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
                host_port = client.sentinel_get_master_addr_by_name(SERVICE)
                client.close()
                if isinstance(host_port, tuple):
                    return int(host_port[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answers")

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: a graceful promotion of the replica."""
        client = redis.Redis(host="127.0.0.1", port=self.ports[0], socket_timeout=2)
        client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        client.close()

    def wait_master(self, port: int, timeout: float = 30.0) -> None:
        """Until every sentinel names ``port`` as the primary and it accepts writes."""

        def done() -> bool:
            if self.master_port() != port:
                return False
            try:
                r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
                role = r.role()[0]
                r.close()
            except redis.RedisError:
                return False
            return role in (b"master", "master")

        self._wait(done, timeout, f"127.0.0.1:{port} to become the primary")

    def stop(self) -> None:
        for proc in self._procs:
            proc.kill()
            proc.wait(5)
        self._procs.clear()
        self.replica.stop()

    def _replica_synced(self) -> bool:
        try:
            r = redis.Redis(host="127.0.0.1", port=self.replica.port, socket_timeout=1)
            info = r.info("replication")
            r.close()
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    def _sentinels_see_replica(self) -> bool:
        for port in self.ports:
            try:
                r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
                replicas = r.sentinel_slaves(SERVICE)
                r.close()
            except redis.RedisError:
                return False
            if not any(int(x.get("port", 0)) == self.replica.port for x in replicas):
                return False
        return True

    @staticmethod
    def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.1)


def role(port: int) -> tuple[str, str]:
    """(role, replication link status) of the server on ``port``: ("master", "") or ("slave", "up")."""
    try:
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
        info = r.info("replication")
        r.close()
    except redis.RedisError:
        return ("down", "")
    return (str(info.get("role", "")), str(info.get("master_link_status", "")))


def replicated(primary: int, replica: int) -> bool:
    """The replica has applied every write the primary holds (equal replication offsets)."""
    try:
        p = redis.Redis(host="127.0.0.1", port=primary, socket_timeout=1, decode_responses=True)
        q = redis.Redis(host="127.0.0.1", port=replica, socket_timeout=1, decode_responses=True)
        done = int(p.info("replication")["master_repl_offset"]) == int(
            q.info("replication").get("slave_repl_offset", -1)
        )
        p.close()
        q.close()
    except redis.RedisError:
        return False
    return done
