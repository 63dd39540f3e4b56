"""One soak: the deployment, the load, the faults, the drain, the check, and the report."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from infra.infra import tail

from bench.bad_clients import BadClientReport, bad_clients, granian_processes
from bench.soak import check
from bench.soak.deployment import Deployment, deployment
from bench.soak.faults import KINDS, Fault, Injector, schedule
from bench.soak.load import READ_SIZES, Client, Oracle, User

#: Peak resident memory each kind of process should stay under, in MB.
RSS_GOALS = {"api worker": 150, "processor": 250}
CANARY, CANARY_READER = "canary", "canary-reader"


@dataclass
class Plan:
    seed: int
    seconds: float
    users: int = 40
    #: Mean seconds a user waits between two operations.
    pace: float = 0.4
    gap: tuple[float, float] = (2.0, 8.0)
    hold: tuple[float, float] = (1.0, 5.0)
    #: The kinds of fault drawn from (see faults.KINDS).
    kinds: tuple[str, ...] = KINDS
    #: How long the feeds may take to converge after the last fault before the check gives up.
    converge_timeout: float = 180.0
    #: Idle connections the bad clients hold open, at the start, beside the slow and oversized ones.
    idle_connections: int = 2000
    #: How long the bad clients run (above the server's header and body timeouts).
    bad_client_seconds: float = 12.0

    def faults(self) -> list[Fault]:
        # More than can happen in the time: the run stops drawing from it when the time is up.
        count = int(self.seconds / self.gap[0]) + 1
        return schedule(self.seed, count, gap=self.gap, hold=self.hold, kinds=self.kinds)


@dataclass
class Report:
    plan: Plan
    oracle: Oracle = field(default_factory=Oracle)
    injected: list[tuple[Fault, float]] = field(default_factory=list)
    #: Seconds from a fault's healing to a new post in a follower's feed, by the fault.
    recoveries: list[tuple[Fault, float]] = field(default_factory=list)
    bad_clients: BadClientReport | None = None
    #: Seconds from the last fault's healing until every feed was exact (None: not within the patience).
    convergence: float | None = None
    #: Seconds from the load's end until then.
    settling: float | None = None
    final: list[str] = field(default_factory=list)
    dead_letters: int = 0
    peak_rss: dict[str, float] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def anomalies(self) -> list[str]:
        return [*self.oracle.anomalies, *self.exits, *self.final]

    def problems(self) -> list[str]:
        problems = [f"anomaly: {text}" for text in self.anomalies()]
        if self.bad_clients is not None:
            problems += [f"bad clients: {problem}" for problem in self.bad_clients.problems()]
        if self.convergence is None:
            problems.append("the feeds did not converge")
        if self.dead_letters:
            problems.append(f"{self.dead_letters} dead letters (no fault of the soak is a poison event)")
        problems += [
            f"peak RSS of a {kind} {self.peak_rss[kind]:.0f} MB, above {goal} MB"
            for kind, goal in RSS_GOALS.items()
            if self.peak_rss.get(kind, 0) > goal
        ]
        return problems

    def lines(self) -> list[str]:
        operations: dict[str, Counter[str]] = {}
        for (operation, outcome), count in sorted(self.oracle.operations.items()):
            operations.setdefault(operation, Counter())[outcome] = count
        kinds = Counter(fault.kind for fault, _ in self.injected)
        recovered: dict[str, list[float]] = {}
        for fault, seconds in self.recoveries:
            recovered.setdefault(fault.kind, []).append(seconds)
        posts = Counter(posted.outcome for posted in self.oracle.posts.values())
        anomalies = self.anomalies()
        lines = [
            f"seed {self.plan.seed}: {self.plan.seconds:.0f} s of load from {self.plan.users} users, "
            f"{len(self.injected)} faults; {self.elapsed:.0f} s in all",
            "operations by outcome:",
            *(
                f"  {operation:9} {sum(outcomes.values()):7}  "
                + ", ".join(f"{outcome} {count}" for outcome, count in outcomes.most_common())
                for operation, outcomes in operations.items()
            ),
            "posts: "
            + ", ".join(f"{outcome} {count}" for outcome, count in posts.most_common())
            + f"; deleted {sum(posted.deleted is True for posted in self.oracle.posts.values())}",
            "faults by kind, and the time from each one's healing to a new post in a follower's feed:",
            *(
                f"  {count:4}  {kind:30}"
                + (
                    f" median {statistics.median(recovered[kind]):5.2f} s, longest {max(recovered[kind]):5.2f} s"
                    if kind in recovered
                    else ""
                )
                for kind, count in kinds.most_common()
            ),
        ]
        if self.recoveries:
            lines.append(
                f"  all   median {statistics.median(seconds for _, seconds in self.recoveries):.2f} s, "
                f"longest {max(seconds for _, seconds in self.recoveries):.2f} s"
            )
        lines += [
            "every feed exact: "
            + (
                "never"
                if self.convergence is None or self.settling is None
                else f"{self.convergence:.1f} s after the last fault healed, "
                f"{self.settling:.1f} s after the load stopped"
            ),
            f"dead letters: {self.dead_letters}",
            "peak RSS: " + ", ".join(f"{kind} {mb:.0f} MB" for kind, mb in sorted(self.peak_rss.items())),
            *([] if self.bad_clients is None else self.bad_clients.lines()),
            f"anomalies: {len(anomalies)}",
            *(f"  {text}" for text in anomalies[:30]),
        ]
        return lines


def soak(plan: Plan, directory: Path) -> Report:
    """Start the deployment under ``directory``, soak it, stop it; what was found."""
    report = Report(plan)
    started = time.monotonic()
    print(f"soak: seed {plan.seed}; the faults it may draw, in order:", flush=True)
    for fault in plan.faults():
        print(f"  {fault}", flush=True)
    with deployment(directory) as deployed:
        asyncio.run(_soak(plan, deployed, report))
    report.elapsed = time.monotonic() - started
    return report


async def _soak(plan: Plan, deployed: Deployment, report: Report) -> None:
    limits = httpx.Limits(max_connections=plan.users + 50, max_keepalive_connections=plan.users + 50)
    async with httpx.AsyncClient(base_url=deployed.base_url, limits=limits) as http:
        await _run(plan, deployed, http, report)
    report.dead_letters = await dead_letters(deployed)


async def _run(plan: Plan, deployed: Deployment, http: httpx.AsyncClient, report: Report) -> None:
    oracle = report.oracle
    names = [f"u{number:02}" for number in range(plan.users)]
    clients = {name: Client(http, name, deployed.token(name), oracle) for name in [*names, CANARY, CANARY_READER]}
    for name in clients:
        oracle.follows[name] = set()
    users = [User(clients[name], names, random.Random(f"{plan.seed}:{name}")) for name in names]
    await User(clients[CANARY_READER], [CANARY], random.Random(plan.seed)).follow()
    for user in users:
        for _ in range(3):
            await user.follow()

    stop, done = asyncio.Event(), asyncio.Event()
    sampling = asyncio.create_task(_sample_rss(deployed, report.peak_rss, done))
    load = [asyncio.create_task(user.run(stop, plan.pace)) for user in users]
    print(f"soak: bad clients for {plan.bad_client_seconds:.0f} s, beside the load", flush=True)
    report.bad_clients = await bad_clients(
        deployed.base_url,
        deployed.token(names[0]),
        names[0],
        lambda: granian_processes(deployed.roles["serve"].pid),
        idle_connections=plan.idle_connections,
        seconds=plan.bad_client_seconds,
    )
    probes: list[asyncio.Task[None]] = []
    injector = Injector(deployed)
    deadline = time.monotonic() + plan.seconds
    last_healed = time.monotonic()
    for fault in plan.faults():
        await asyncio.sleep(fault.gap)
        if time.monotonic() + fault.hold > deadline:
            break
        print(f"soak: {time.monotonic() - deadline + plan.seconds:6.1f} s  {fault}", flush=True)
        await asyncio.to_thread(injector.inject, fault)
        last_healed = time.monotonic()
        report.injected.append((fault, last_healed))
        report.exits += _restart_the_fallen(deployed)
        probes.append(asyncio.create_task(_recovery(clients, report, fault, last_healed)))
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    stop.set()
    await asyncio.gather(*load, *probes)
    stopped = time.monotonic()
    report.exits += _restart_the_fallen(deployed)

    print("soak: load stopped; waiting for every feed to converge", flush=True)
    timelines = {}
    for name, client in clients.items():
        items = await check.read_all(client, f"/users/{name}/posts", lambda: 100)
        if items is None:
            report.final.append(f"{name}'s timeline could not be read")
        timelines[name] = items or []
    expected = check.Expected(oracle, timelines, list(clients))
    report.final += expected.anomalies
    report.convergence, wrong = await check.converge(
        clients, expected, since=last_healed, patience=plan.converge_timeout
    )
    report.final += wrong
    if report.convergence is not None:
        report.settling = report.convergence - (stopped - last_healed)
    report.final += await check.following(clients, oracle)
    report.final += await check.whole_feeds(clients, expected, random.Random(plan.seed))
    report.final += await check.first_pages(clients, expected, READ_SIZES)
    done.set()
    await sampling


async def _recovery(clients: dict[str, Client], report: Report, fault: Fault, healed: float) -> None:
    """The time from ``healed`` until a post made then shows in a follower's feed."""
    posted = await clients[CANARY].publish(f"{CANARY}.{len(report.oracle.posts)}.{time.monotonic_ns()}", keyed=True)
    if posted.outcome != "acknowledged":
        return
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await clients[CANARY_READER].call("canary", "GET", f"/feeds/{CANARY_READER}?limit=5")
        shown = [] if response is None or response.status_code != 200 else response.json()["items"]
        if any(item["id"] == posted.id for item in shown):
            report.recoveries.append((fault, time.monotonic() - healed))
            return
        await asyncio.sleep(0.1)
    report.oracle.anomaly(f"the canary post {posted.id} was not in its follower's feed 120 s after it was made")


def _restart_the_fallen(deployed: Deployment) -> list[str]:
    """feedcore's processes that exited without being killed: each an anomaly, and started again."""
    fallen = []
    for name, role in deployed.roles.items():
        if not role.alive():
            code = None if role.popen is None else role.popen.returncode
            fallen.append(f"{name} exited by itself (code {code}); its log ends:\n{tail(role.log, 15)}")
            deployed.start(name)
            if name == "serve":
                deployed.wait_for_workers()
    return fallen


async def _sample_rss(deployed: Deployment, peak: dict[str, float], stop: asyncio.Event) -> None:
    """The highest resident memory of each kind of process, from each one's own high-water mark."""
    while True:
        for kind, pids in deployed.processes().items():
            for pid in pids:
                peak[kind] = max(peak.get(kind, 0.0), high_water_mark(pid))
        if stop.is_set():
            return
        await asyncio.sleep(1)


def high_water_mark(pid: int) -> float:
    """The most resident memory ``pid`` has had, in MB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(found[0]) / 1024 if found else 0.0


async def dead_letters(deployed: Deployment) -> int:
    """How many events the dead-letter topic holds."""
    topic = "feedcore.events.dlq"
    consumer = AIOKafkaConsumer(bootstrap_servers=deployed.kafka.url())
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()  # the metadata, once more
            partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, partition) for partition in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()
