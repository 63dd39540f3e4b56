"""The soak's own deployment: a private PostgreSQL, Redis and Kafka broker, each behind a TCP proxy,
and feedcore's processes on them (`serve --workers 2`, a separate relay, two processors), with the
means to break each of them and to bring it back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from infra.infra import Kafka, Postgres, Redis, tail
from infra.tcp_proxy import TcpProxy

from bench.bad_clients import granian_processes
from bench.harness import free_port
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

ROOT = Path(__file__).parents[2]
SECRET = "soak-" + "s" * 40
SERVER_WORKERS = 2
PROCESSORS = 2


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SoakError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class SoakError(Exception):
    """The deployment could not be started, or a part of it could not be brought back."""


@dataclass
class Role:
    """One of feedcore's commands, started (and started again) with the deployment's settings."""

    name: str
    arguments: tuple[str, ...]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise SoakError(f"{self.name} was never started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Deployment:
    directory: Path
    postgres: Postgres
    redis: Redis
    kafka: Kafka
    proxies: dict[str, TcpProxy]
    port: int
    roles: dict[str, Role] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        """PostgreSQL directly, not through its proxy: for the soak's own checks."""
        return self.postgres.url()

    def settings(self) -> dict[str, str]:
        return {
            "FEEDCORE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{self.proxies['postgres'].port}/feedcore",
            "FEEDCORE_REDIS_URL": f"redis://127.0.0.1:{self.proxies['redis'].port}/0",
            "FEEDCORE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.proxies['kafka'].port}",
            "FEEDCORE_JWT_SECRET": SECRET,
            "FEEDCORE_PORT": str(self.port),
            "FEEDCORE_MIGRATE_ON_START": "true",
            "FEEDCORE_LOG_LEVEL": "WARNING",
            # A few authors cross the celebrity threshold during the run, and some fall back under it.
            "FEEDCORE_CELEBRITY_THRESHOLD": os.environ.get("SOAK_CELEBRITY_THRESHOLD", "12"),
        }

    def token(self, user: str) -> str:
        return Tokens(SECRET).issue(UserId(user))

    # --- feedcore's processes ------------------------------------------------------------------------

    def start(self, name: str) -> None:
        role = self.roles[name]
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("FEEDCORE_")}
        with role.log.open("ab") as log:
            role.popen = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "feedcore"), *role.arguments],
                env={**inherited, **self.settings()},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: the server's workers go with it
            )
        role.starts += 1

    def kill(self, name: str) -> None:
        """``kill -9`` of the role's process (and, for the server, of its whole group)."""
        role = self.roles[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(role.pid, signal.SIGKILL)
        if role.popen is not None:
            role.popen.wait(timeout=30)

    def server_workers(self) -> list[int]:
        """The pids of the server's workers: the children of granian's main process."""
        return granian_processes(self.roles["serve"].pid)[1:]

    def server_answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_for_workers(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.roles["serve"].alive():
                raise SoakError(f"feedcore serve exited:\n{tail(self.roles['serve'].log)}")
            return len(self.server_workers()) == SERVER_WORKERS and self.server_answers()

        wait_until(ready, timeout=timeout, what="the server's workers")

    def stop_all(self) -> None:
        for role in self.roles.values():
            if role.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(role.pid, signal.SIGTERM)
        for role in self.roles.values():
            if role.popen is not None:
                try:
                    role.popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(role.pid, signal.SIGKILL)
                    role.popen.wait(timeout=10)

    def processes(self) -> dict[str, list[int]]:
        """The pids of feedcore's processes now, by the kind the goals name."""
        found: dict[str, list[int]] = {"api worker": [], "relay": [], "processor": []}
        for name, role in self.roles.items():
            if not role.alive():
                continue
            if name == "serve":
                found["api worker"] += self.server_workers()
            else:
                found["relay" if name == "relay" else "processor"].append(role.pid)
        return found


@contextmanager
def deployment(directory: Path) -> Iterator[Deployment]:
    """Everything started under ``directory``; everything this started is stopped at exit."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # PostgreSQL runs as its own user when this runs as root
    with ExitStack() as stack:
        postgres = Postgres(port=free_port(), home=directory / "postgres")
        redis = Redis(port=free_port(), home=directory / "redis")
        kafka_port = free_port()
        proxies = {
            "postgres": stack.enter_context(TcpProxy("127.0.0.1", postgres.port)),
            "redis": stack.enter_context(TcpProxy("127.0.0.1", redis.port)),
            "kafka": stack.enter_context(TcpProxy("127.0.0.1", kafka_port)),
        }
        # Clients are told to reach the broker through its proxy, or cutting it would cut nothing.
        kafka = Kafka(
            port=kafka_port,
            controller_port=free_port(),
            home=directory / "kafka",
            advertised_port=proxies["kafka"].port,
        )
        for service in (postgres, redis, kafka):
            stack.callback(service.down)
            service.start()
        deployed = Deployment(directory, postgres, redis, kafka, proxies, free_port())
        logs = directory / "logs"
        logs.mkdir(exist_ok=True)
        deployed.roles = {
            "serve": Role("serve", ("serve", "--workers", str(SERVER_WORKERS)), logs / "serve.log"),
            "relay": Role("relay", ("relay",), logs / "relay.log"),
            **{
                f"processor-{number}": Role(f"processor-{number}", ("process",), logs / f"processor-{number}.log")
                for number in range(1, PROCESSORS + 1)
            },
        }
        stack.callback(deployed.stop_all)
        deployed.start("serve")  # it applies the migrations before the others need them
        deployed.wait_for_workers()
        for name in deployed.roles:
            if name != "serve":
                deployed.start(name)
        yield deployed
