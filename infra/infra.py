"""Real PostgreSQL, Redis and Apache Kafka for development and the integration tests, without Docker.

    python infra/infra.py up [--record FILE]     start what is not running; print `export` lines
    python infra/infra.py down [--only FILE]     stop what this script started (by pid)
    python infra/infra.py status                 say what runs where

PostgreSQL and Redis come from Debian packages (installed when missing), Kafka from its Maven
Central jars; each runs as a private instance bound to 127.0.0.1 on a non-default port, with its
data under .infra/. Besides the single Redis there is a Redis Cluster of three masters, for the
tests that prove feedcore on a cluster (FEEDCORE_TEST_REDIS_CLUSTER_URL). When FEEDCORE_DATABASE_URL,
FEEDCORE_REDIS_URL, FEEDCORE_TEST_REDIS_CLUSTER_URL or FEEDCORE_KAFKA_BOOTSTRAP is already set, that
service is used as it is (it must answer) and nothing is started for it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".infra"
KAFKA_POM = ROOT / "infra" / "kafka" / "pom.xml"
KAFKA_LOG_CONFIG = ROOT / "infra" / "kafka" / "log4j2.yaml"

POSTGRES_PORT = 55432
REDIS_PORT = 56379
#: The masters of the local Redis Cluster; each one's cluster bus is on its port - 10,000.
REDIS_CLUSTER_PORTS = (56381, 56382, 56383)
KAFKA_PORT = 59092
KAFKA_CONTROLLER_PORT = 59093
READY_TIMEOUT = 90.0


def say(message: str) -> None:
    print(f"infra: {message}", file=sys.stderr, flush=True)


class InfraError(Exception):
    """A service could not be provided; the message says why, with its log where there is one."""


def run(command: list[str], *, user: str | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    if user is not None and os.geteuid() == 0:
        command = ["runuser", "-u", user, "--", *command]
    done: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        command, check=True, text=True, capture_output=True, **kwargs
    )
    return done


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise InfraError(f"{', '.join(packages)} missing; install them (Debian: apt-get install {' '.join(packages)})")
    say(f"installing {', '.join(packages)} from Debian packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InfraError(f"apt-get install {' '.join(packages)} failed:\n{result.stderr[-2000:]}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(check: Callable[[], bool], what: str, log: Path | None, process_alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        if not process_alive():
            break
        time.sleep(0.25)
    detail = f"\n--- last lines of {log} ---\n{tail(log)}" if log is not None else ""
    raise InfraError(f"{what} did not become ready within {READY_TIMEOUT:.0f} s{detail}")


class Service:
    name: str
    env_var: str
    marker: str  # a word in the process's command line, so a recycled pid is never signalled

    @property
    def pid_file(self) -> Path:
        return STATE / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return STATE / self.name / f"{self.name}.log"

    def recorded_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and self.marker in command_line(pid) else None

    def url(self) -> str:
        raise NotImplementedError

    def reachable(self, url: str) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def up(self) -> tuple[str, bool]:
        """The URL to use, and whether this call started the service."""
        external = os.environ.get(self.env_var)
        if external:
            if not self.reachable(external):
                raise InfraError(f"{self.env_var}={external} is set but does not answer")
            say(f"{self.name}: using {self.env_var}={external}")
            return external, False
        if self.recorded_pid() is not None and self.reachable(self.url()):
            say(f"{self.name}: already running (pid {self.recorded_pid()})")
            return self.url(), False
        (STATE / self.name).mkdir(parents=True, exist_ok=True)
        self.start()
        say(f"{self.name}: running (pid {self.recorded_pid()}) at {self.url()}")
        return self.url(), True

    def down(self) -> None:
        pid = self.recorded_pid()
        if pid is not None:
            self.stop(pid, f"pid {pid}")
        self.pid_file.unlink(missing_ok=True)

    def stop(self, pid: int, what: str) -> None:
        """Signal ``pid`` to stop and wait for it, up to 30 s; then kill it."""
        say(f"{self.name}: stopping {what}")
        os.kill(pid, self.stop_signal)
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if pid_alive(pid):
            say(f"{self.name}: pid {pid} ignored the stop signal; killing it")
            os.kill(pid, signal.SIGKILL)

    stop_signal = signal.SIGTERM

    def status(self) -> str:
        external = os.environ.get(self.env_var)
        if external:
            return (
                f"{self.name:13} external {external} ({'answers' if self.reachable(external) else 'DOES NOT ANSWER'})"
            )
        pid = self.recorded_pid()
        if pid is None:
            return f"{self.name:13} stopped"
        return (
            f"{self.name:13} pid {pid} at {self.url()} ({'answers' if self.reachable(self.url()) else 'not answering'})"
        )


def _pg_ctls() -> list[Path]:
    """Debian's PostgreSQL installations, oldest first."""
    return sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[4]))


class Postgres(Service):
    """The cluster of .infra/postgres on the fixed port by default; a soak runs a private one with a
    port and a home of its own (its pid file, ``<home>.pid``, beside that home), to restart at will."""

    name = "postgres"
    env_var = "FEEDCORE_DATABASE_URL"
    marker = "postgres"
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown

    def __init__(self, *, port: int = POSTGRES_PORT, home: Path | None = None) -> None:
        self.port = port
        self._home = home

    @property
    def pid_file(self) -> Path:
        return STATE / f"{self.name}.pid" if self._home is None else self._home.parent / f"{self._home.name}.pid"

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/feedcore"

    def reachable(self, url: str) -> bool:
        import psycopg  # installed in the project's environment

        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    @staticmethod
    def binaries() -> Path:
        found = _pg_ctls()
        if not found:
            apt_install("postgresql")
            found = _pg_ctls()
        if not found:
            raise InfraError("PostgreSQL's pg_ctl is not under /usr/lib/postgresql/*/bin after installing")
        return Path(found[-1]).parent

    def home(self) -> Path:
        """Where the cluster lives: .infra/postgres, unless the postgres user cannot reach it."""
        if self._home is not None:
            return self._home
        preferred = STATE / "postgres"
        if os.geteuid() != 0:
            return preferred
        if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(STATE)], check=False).returncode == 0:
            return preferred
        # The checkout sits where the postgres user cannot enter (under /root, say).
        digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
        return Path(f"/var/tmp/feedcore-infra-{digest}/postgres")  # noqa: S108  # named for this checkout

    @property
    def log(self) -> Path:
        return self.home() / "postgres.log"

    def start(self) -> None:
        bin_dir = self.binaries()
        home = self.home()
        data = home / "data"
        user = "postgres" if os.geteuid() == 0 else None
        home.mkdir(parents=True, exist_ok=True)
        if user is not None:
            shutil.chown(home, "postgres", "postgres")
            STATE.chmod(0o755)
        if not (data / "PG_VERSION").exists():
            say(f"postgres: initialising a cluster in {data}")
            run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"], user=user)
        self.pg_ctl("start", "-l", str(self.log), "-o", f"-p {self.port} -h 127.0.0.1 -k {home}")
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        self.pid_file.write_text(f"{pid}\n")
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        wait_for(lambda: self.reachable(admin), "postgres", self.log, lambda: pid_alive(pid))
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = 'feedcore'").fetchone():
                connection.execute("CREATE DATABASE feedcore")

    def pg_ctl(self, action: str, *options: str) -> None:
        """``pg_ctl ACTION`` on this cluster, waiting for it (``stop -m immediate`` is a crash)."""
        user = "postgres" if os.geteuid() == 0 else None
        command = [str(self.binaries() / "pg_ctl"), action, "-D", str(self.home() / "data"), "-w", "-t", "60"]
        try:
            run([*command, *options], user=user)
        except subprocess.CalledProcessError as error:
            raise InfraError(f"postgres {action} failed: {error.stderr}\n{tail(self.log)}") from None


class Redis(Service):
    """The server of .infra/redis on the fixed port by default, or a private one with a port and a
    home of its own. Nothing is persisted: started again, it is empty."""

    name = "redis"
    env_var = "FEEDCORE_REDIS_URL"
    marker = "redis-server"

    def __init__(self, *, port: int = REDIS_PORT, home: Path = STATE / "redis") -> None:
        self.port = port
        self.home = home

    @property
    def pid_file(self) -> Path:
        return self.home.parent / f"{self.home.name}.pid"

    @property
    def log(self) -> Path:
        return self.home / "redis.log"

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def reachable(self, url: str) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        server = redis_server()
        home = self.home
        home.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        try:
            run(
                [
                    server,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(self.pid_file),
                    "--logfile",
                    str(self.log),
                    "--dir",
                    str(home),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
            )
        except subprocess.CalledProcessError as error:
            raise InfraError(f"redis did not start: {error.stderr}\n--- {self.log} ---\n{tail(self.log)}") from None
        wait_for(lambda: self.reachable(self.url()), "redis", self.log, lambda: True)


def redis_server() -> str:
    server = shutil.which("redis-server")
    if server is None:
        apt_install("redis-server")
        server = shutil.which("redis-server")
    if server is None:
        raise InfraError("redis-server is not on PATH after installing")
    return server


class RedisCluster(Service):
    """Three masters without replicas, made a cluster afresh at every start (nothing is persisted).

    Each node reads its settings from ``.infra/redis-cluster/<port>/redis.conf`` (``INFO server``
    names it), so that a test can kill a node and start it again as it was: it comes back empty,
    with its slots.
    """

    name = "redis-cluster"
    env_var = "FEEDCORE_TEST_REDIS_CLUSTER_URL"
    marker = "redis-server"

    def home_of(self, port: int) -> Path:
        return STATE / self.name / str(port)

    def node_pid(self, port: int) -> int | None:
        try:
            pid = int((self.home_of(port) / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and self.marker in command_line(pid) else None

    def recorded_pid(self) -> int | None:
        pids = [self.node_pid(port) for port in REDIS_CLUSTER_PORTS]
        return pids[0] if all(pids) else None

    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{REDIS_CLUSTER_PORTS[0]}"

    def reachable(self, url: str) -> bool:
        from redis.cluster import RedisCluster as Client
        from redis.exceptions import RedisClusterException, RedisError

        try:
            client = Client.from_url(url.replace("+cluster", "", 1), socket_timeout=2)
            try:
                return bool(client.cluster_info().get("cluster_state") == "ok")
            finally:
                client.close()
        except (RedisError, RedisClusterException):
            return False

    def start(self) -> None:
        server = redis_server()
        self.down()
        for port in REDIS_CLUSTER_PORTS:
            home = self.home_of(port)
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            config = home / "redis.conf"
            config.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        "daemonize yes",
                        f"pidfile {home / 'redis.pid'}",
                        f"logfile {home / 'redis.log'}",
                        f"dir {home}",
                        'save ""',
                        "appendonly no",
                        "cluster-enabled yes",
                        "cluster-config-file nodes.conf",
                        f"cluster-port {port - 10_000}",
                        # A node that stops answering is marked failed after two seconds, not fifteen.
                        "cluster-node-timeout 2000",
                        "",
                    ]
                )
            )
            try:
                run([server, str(config)])
            except subprocess.CalledProcessError as error:
                raise InfraError(f"redis-cluster node {port} did not start: {error.stderr}") from None
        self.pid_file.write_text(f"{self.node_pid(REDIS_CLUSTER_PORTS[0]) or ''}\n")
        nodes = [f"127.0.0.1:{port}" for port in REDIS_CLUSTER_PORTS]
        cli = shutil.which("redis-cli") or "redis-cli"
        try:
            run([cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"])
        except subprocess.CalledProcessError as error:
            log = self.home_of(REDIS_CLUSTER_PORTS[0]) / "redis.log"
            raise InfraError(f"redis-cli --cluster create failed: {error.stdout}{error.stderr}\n{tail(log)}") from None
        wait_for(lambda: self.reachable(self.url()), "redis-cluster", None, lambda: self.recorded_pid() is not None)

    def down(self) -> None:
        for port in REDIS_CLUSTER_PORTS:
            pid = self.node_pid(port)
            if pid is not None:
                self.stop(pid, f"node {port} (pid {pid})")
        self.pid_file.unlink(missing_ok=True)


class Kafka(Service):
    """The broker of .infra/kafka on the fixed ports by default; a test may run a private one beside
    it with ports and a home of its own (its pid file, ``<home>.pid``, sits beside that home), or
    several, each a node of one cluster (see :func:`kafka_cluster`)."""

    name = "kafka"
    env_var = "FEEDCORE_KAFKA_BOOTSTRAP"
    marker = "kafka.Kafka"

    def __init__(
        self,
        *,
        port: int = KAFKA_PORT,
        controller_port: int = KAFKA_CONTROLLER_PORT,
        home: Path = STATE / "kafka",
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        replicas: int = 1,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port
        #: The port clients are told to connect to: a proxy's in front of the broker, say.
        self.advertised_port = advertised_port or port
        self.controller_port = controller_port
        self.home = home
        self.node_id = node_id
        #: ``id@host:port`` of every controller of the cluster; alone, this node.
        self.voters = voters or f"{node_id}@127.0.0.1:{controller_port}"
        self.cluster_id = cluster_id
        #: Copies of the internal topics, and of topics created without saying.
        self.replicas = replicas
        #: The broker this object started: a Popen dropped while its child runs warns (ResourceWarning).
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.home.parent / f"{self.home.name}.pid"

    @property
    def log(self) -> Path:
        return self.home / "kafka.log"

    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def down(self) -> None:
        super().down()
        if self.process is not None and self.process.poll() is not None:  # down() reaped it: let the Popen know
            self.process = None

    def reachable(self, url: str) -> bool:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals while it starts are expected

        async def probe() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=url, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.list_topics()
            except (TimeoutError, KafkaError, OSError):
                return False
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
            return True

        return asyncio.run(probe())

    def lib(self) -> Path:
        """The broker's jars, copied from the Maven cache (~/.m2) once per version of the pom."""
        lib = STATE / "kafka" / "lib"
        stamp = lib / ".pom-sha256"
        wanted = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == wanted:
            return lib
        for tool, package in (("java", "openjdk-17-jre-headless"), ("mvn", "maven")):
            if shutil.which(tool) is None:
                apt_install(package)
        say("kafka: fetching the broker's jars with Maven")
        shutil.rmtree(lib, ignore_errors=True)
        try:
            run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    str(KAFKA_POM),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={lib}",
                    "-DincludeScope=runtime",
                ]
            )
        except subprocess.CalledProcessError as error:
            raise InfraError(f"maven could not fetch Kafka:\n{error.stdout[-3000:]}{error.stderr[-2000:]}") from None
        stamp.write_text(wanted)
        return lib

    def start(self) -> None:
        self.launch()
        self.wait()

    def wait(self) -> None:
        wait_for(
            lambda: self.reachable(self.url()),
            "kafka",
            self.log,
            lambda: self.process is not None and self.process.poll() is None,
        )

    def launch(self) -> None:
        """Start the node without waiting for it: a node of a cluster answers only once a majority
        of the controllers is up."""
        lib = self.lib()
        self.home.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.advertised_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=4",
                    f"offsets.topic.replication.factor={self.replicas}",
                    f"transaction.state.log.replication.factor={self.replicas}",
                    f"default.replication.factor={self.replicas}",
                    # With three copies, a write is acknowledged once two have it: one node may fail.
                    f"transaction.state.log.min.isr={min(self.replicas, 2)}",
                    f"min.insync.replicas={min(self.replicas, 2)}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        classpath = f"{lib}/*"
        if not (data / "meta.properties").exists():
            cluster = (
                self.cluster_id
                or run(["java", "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"]).stdout.strip()
            )
            say(f"kafka: formatting KRaft storage (cluster {cluster})")
            run(["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(config)])
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [
                    "java",
                    "-Xms512m",
                    "-Xmx512m",
                    "-XX:+UseG1GC",
                    f"-Dlog4j2.configurationFile={KAFKA_LOG_CONFIG}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.process = process
        self.pid_file.write_text(f"{process.pid}\n")


def delete_kafka_topics(bootstrap: str, topic: str) -> None:
    """Drop ``topic`` and its dead-letter topic, if they were made and the broker is there to ask
    (a broker stopped for good took its topics with it). Runs its own event loop, in a thread of
    its own: the caller may be inside a running one."""
    from concurrent.futures import ThreadPoolExecutor

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            doomed = [name for name in (topic, f"{topic}.dlq") if name in existing]
            if doomed:
                await admin.delete_topics(doomed)
        except (KafkaError, OSError):
            return
        finally:
            await admin.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, delete()).result()


def kafka_cluster(home: Path, ports: list[tuple[int, int]]) -> list[Kafka]:
    """A KRaft cluster of one node per (port, controller port), each broker and controller, under
    ``home``: every topic in three copies (or as many as there are nodes) and written once two have
    it. Started together; returned once each node answers. Stop each with ``down()``."""
    voters = ",".join(f"{node}@127.0.0.1:{controller}" for node, (_, controller) in enumerate(ports, start=1))
    # An id starting with "-" (one in 64) would be read by StorageTool as an option of its own;
    # Kafka's own random ids avoid it the same way.
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    nodes = [
        Kafka(
            port=port,
            controller_port=controller,
            home=home / f"node-{node}",
            node_id=node,
            voters=voters,
            cluster_id=cluster_id,
            replicas=min(3, len(ports)),
        )
        for node, (port, controller) in enumerate(ports, start=1)
    ]
    try:
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait()
    except BaseException:
        for node in nodes:
            node.down()
        raise
    return nodes


SERVICES: list[Service] = [Postgres(), Redis(), RedisCluster(), Kafka()]


def up(record: Path | None) -> None:
    STATE.mkdir(exist_ok=True)
    urls: dict[str, str] = {}
    started: list[str] = []
    try:
        for service in SERVICES:
            urls[service.env_var], fresh = service.up()
            if fresh:
                started.append(service.name)
    finally:
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text("".join(f"{name}\n" for name in started))
    exports = "".join(f"export {name}={value}\n" for name, value in urls.items())
    (STATE / "env").write_text(exports)
    sys.stdout.write(exports)


def down(only: Path | None) -> None:
    names = None if only is None else set(only.read_text().split()) if only.exists() else set()
    for service in reversed(SERVICES):
        if names is None or service.name in names:
            service.down()
    if only is not None:
        only.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the services; print their FEEDCORE_* environment")
    start.add_argument("--record", type=Path, help="write the names of the services this call started here")
    stop = commands.add_parser("down", help="stop the services this script started")
    stop.add_argument("--only", type=Path, help="stop only the services named in this file (from up --record)")
    commands.add_parser("status", help="say what runs where")
    arguments = parser.parse_args()
    try:
        if arguments.command == "up":
            up(arguments.record)
        elif arguments.command == "down":
            down(arguments.only)
        else:
            for service in SERVICES:
                print(service.status())
    except InfraError as error:
        say(f"FAILED: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
