"""Prometheus metrics: every family feedcore exports, on a registry the caller gives.

One :class:`Metrics` per process, shared by its API, relay and processor parts. Several server
workers (``feedcore serve --workers N``) share one directory through prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): each worker writes its own samples there, and
whichever worker answers ``/metrics`` adds up all of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from feedcore.events import Event, event_type
from feedcore.model import Post

MULTIPROCESS_DIRECTORY: Final = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: from milliseconds (a fan-out, a relay batch) to the seconds an outage lasts.
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The metric families, and what moves them. Implements :class:`feedcore.Telemetry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.http_requests = Counter(
            "feedcore_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "feedcore_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=registry,
        )
        self.posts_created = Counter("feedcore_posts_created", "Posts published.", registry=registry)
        self.idempotent_replays = Counter(
            "feedcore_idempotent_replays",
            "Repeated POST /posts answered with the first request's post (same Idempotency-Key).",
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "feedcore_outbox_backlog",
            "Events in the outbox not yet published to the event bus (counted up to 100,000).",
            registry=registry,
            multiprocess_mode="max",
        )
        self.relay_publish = Histogram(
            "feedcore_relay_publish_seconds",
            "Time to publish one batch of outbox events and have the bus acknowledge it.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.relayed = Counter("feedcore_relayed_events", "Outbox events published to the bus.", registry=registry)
        self.events_processed = Counter(
            "feedcore_events_processed",
            "Events the processor took, by type and outcome (applied, duplicate, dead_lettered).",
            ["type", "outcome"],
            registry=registry,
        )
        self.fanout_entries = Counter(
            "feedcore_fanout_entries", "Feed entries written into the store by fan-out.", registry=registry
        )
        self.fanout_duration = Histogram(
            "feedcore_fanout_duration_seconds",
            "Time to write one post into every follower's feed in the store.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.post_to_feed = Histogram(
            "feedcore_post_to_feed_seconds",
            "From a post's creation until it is in its followers' feeds (store and cache).",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "feedcore_consumer_lag",
            "Events on the bus not yet taken by this consumer group, by partition.",
            ["partition"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.dead_letters = Counter(
            "feedcore_dead_letters",
            "Events sent to the dead-letter topic, by reason (undecodable, failing).",
            ["reason"],
            registry=registry,
        )
        self.retries = Counter(
            "feedcore_retries",
            "Operations retried after a transient failure, by component and error class.",
            ["component", "error"],
            registry=registry,
        )
        self.lookups = Counter(
            "feedcore_cache_lookups",
            "Cache lookups, by kind (page, feed, celebrity, post) and result (hit, miss).",
            ["kind", "result"],
            registry=registry,
        )
        self.rebuilds = Counter(
            "feedcore_cache_rebuilds",
            "Cold cache windows rebuilt from PostgreSQL, by kind (feed, celebrity).",
            ["kind"],
            registry=registry,
        )
        self.pruned = Counter(
            "feedcore_pruned_rows",
            "Rows deleted once expired, by table (idempotency_keys, processed_events).",
            ["table"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "feedcore_fallbacks",
            "Work done without a dependency that was unavailable, by dependency and operation "
            "(Redis: cache operations skipped for PostgreSQL; PostgreSQL: requests answered 503).",
            ["dependency", "operation"],
            registry=registry,
        )

    def _child(self, family: _Family, *labels: str) -> _Family:
        """``family.labels(*labels)``, remembered: on every request, the lookup is most of the cost
        of counting it (prometheus-client checks and converts the labels, under a lock, each time)."""
        key = (id(family), labels)  # the families live as long as this object
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return cast("_Family", child)

    # --- feedcore.Telemetry ----------------------------------------------------------------------

    def post_published(self, *, replayed: bool) -> None:
        (self.idempotent_replays if replayed else self.posts_created).inc()

    def cache_lookups(self, kind: str, *, hits: int, misses: int) -> None:
        if hits:
            self._child(self.lookups, kind, "hit").inc(hits)
        if misses:
            self._child(self.lookups, kind, "miss").inc(misses)

    def cache_rebuilt(self, kind: str) -> None:
        self.rebuilds.labels(kind).inc()

    def fanned_out(self, *, entries: int, seconds: float) -> None:
        self.fanout_entries.inc(entries)
        self.fanout_duration.observe(seconds)

    def reached_feeds(self, post: Post) -> None:
        self.post_to_feed.observe(max(0.0, (datetime.now(UTC) - post.created_at).total_seconds()))

    # --- the rest --------------------------------------------------------------------------------

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, route, method, str(status)).inc()
        self._child(self.http_duration, route, method).observe(seconds)

    def events_applied(self, events: Sequence[Event], fresh: Sequence[Event]) -> None:
        applied = {event.event_id for event in fresh}
        for event in events:
            outcome = "applied" if event.event_id in applied else "duplicate"
            applied.discard(event.event_id)  # a repeat within the batch is a duplicate
            self.events_processed.labels(event_type(event), outcome).inc()

    def dead_lettered(self, event_type: str, reason: str) -> None:
        self.events_processed.labels(event_type, "dead_lettered").inc()
        self.dead_letters.labels(reason).inc()

    def fell_back(self, dependency: str, operation: str) -> None:
        self.fallbacks.labels(dependency, operation).inc()

    def retried(self, component: str, error: BaseException) -> None:
        self.retries.labels(component, type(error).__name__).inc()

    def exposition(self) -> bytes:
        """Every sample in the text format: this process's, or with several workers, all of theirs."""
        directory = os.environ.get(MULTIPROCESS_DIRECTORY)
        if not directory:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(combined)


_Family = TypeVar("_Family", Counter, Histogram)


def process_registry() -> CollectorRegistry:
    """A registry holding this process's own metrics (CPU, memory, file descriptors, Python)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
