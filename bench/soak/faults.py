"""The fault schedule: drawn from a seed before the run, so that the same seed breaks the same
things in the same order, and carried out one fault at a time against a :class:`Deployment`."""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass

from bench.soak.deployment import PROCESSORS, Deployment, SoakError

#: Every kind of fault, by name. Each breaks one part for a while (``hold``), then brings it back.
KINDS = (
    "kill -9 a server worker",
    "kill -9 the relay",
    "kill -9 a processor",
    "restart postgres (fast)",
    "restart postgres (immediate)",
    "kill -9 kafka, restart it",
    "restart redis empty",
    "cut postgres",
    "cut kafka",
    "cut redis",
    "stall postgres",
    "stall kafka",
    "stall redis",
)
#: granian gives up on a worker that dies again within 5.5 s of being started again.
WORKER_KILL_SPACING = 6.0


@dataclass(frozen=True)
class Fault:
    number: int
    #: Seconds of quiet after the previous fault healed.
    gap: float
    kind: str
    #: Seconds the part stays broken (a killed worker is started again by granian at once).
    hold: float
    #: Which processor, or which server worker (by its place among them).
    target: int

    def __str__(self) -> str:
        which = f" #{self.target}" if self.kind in ("kill -9 a processor", "kill -9 a server worker") else ""
        return f"#{self.number:<3} after {self.gap:4.1f} s: {self.kind}{which}, for {self.hold:.1f} s"


def schedule(
    seed: int, count: int, *, gap: tuple[float, float], hold: tuple[float, float], kinds: tuple[str, ...] = KINDS
) -> list[Fault]:
    """``count`` faults drawn from ``seed``: each of ``kinds`` once in each round, in a shuffled order."""
    draw = random.Random(seed)
    faults: list[Fault] = []
    while len(faults) < count:
        kinds = tuple(draw.sample(kinds, len(kinds)))
        for kind in kinds[: count - len(faults)]:
            faults.append(
                Fault(
                    number=len(faults) + 1,
                    gap=round(draw.uniform(*gap), 1),
                    kind=kind,
                    hold=round(draw.uniform(*hold), 1),
                    target=draw.randrange(max(PROCESSORS, 2)),
                )
            )
    return faults


class Injector:
    """Carries out faults (blocking: run it in a thread of its own)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self._last_worker_kill = 0.0

    def inject(self, fault: Fault) -> None:
        """Break, hold, and bring back; returns once the part is back (the system may still be catching up)."""
        deployed = self.deployment
        proxy_name = fault.kind.split()[-1]
        match fault.kind:
            case "kill -9 a server worker":
                time.sleep(max(0.0, self._last_worker_kill + WORKER_KILL_SPACING - time.monotonic()))
                workers = deployed.server_workers()
                os.kill(workers[fault.target % len(workers)], signal.SIGKILL)
                self._last_worker_kill = time.monotonic()
                time.sleep(fault.hold)
                deployed.wait_for_workers()
            case "kill -9 the relay" | "kill -9 a processor":
                name = "relay" if "relay" in fault.kind else f"processor-{fault.target % PROCESSORS + 1}"
                deployed.kill(name)
                time.sleep(fault.hold)
                deployed.start(name)
            case "restart postgres (fast)" | "restart postgres (immediate)":
                deployed.postgres.pg_ctl("stop", "-m", "fast" if "fast" in fault.kind else "immediate")
                time.sleep(fault.hold)
                deployed.postgres.start()
            case "kill -9 kafka, restart it":
                broker = deployed.kafka.process
                if broker is None:
                    raise SoakError("the soak did not start the Kafka broker")
                broker.kill()
                broker.wait(timeout=30)
                time.sleep(fault.hold)
                deployed.kafka.start()
            case "restart redis empty":
                deployed.redis.down()
                time.sleep(fault.hold)
                deployed.redis.start()
            case "cut postgres" | "cut kafka" | "cut redis":
                deployed.proxies[proxy_name].cut()
                time.sleep(fault.hold)
                deployed.proxies[proxy_name].restore()
            case "stall postgres" | "stall kafka" | "stall redis":
                deployed.proxies[proxy_name].stall()
                time.sleep(fault.hold)
                deployed.proxies[proxy_name].resume()
            case _:
                raise ValueError(f"no such fault: {fault.kind}")
