"""Settings from ``FEEDCORE_*`` environment variables, checked as a whole at startup."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from feedcore import Policies

PREFIX: Final = "FEEDCORE_"
TEST_PREFIX: Final = "FEEDCORE_TEST_"
MIN_SECRET_BYTES: Final = 32


class ConfigurationError(Exception):
    """The configuration is missing something or contradicts itself; the message says what."""


Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65_535)] = 8000
    #: HS256 key for bearer tokens; embedded mode generates one into ``dev_secret_file`` if unset.
    jwt_secret: str | None = None
    dev_secret_file: str | None = None
    database_url: str | None = None
    database_pool_min: Positive = 2
    database_pool_max: Positive = 10
    database_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: Apply pending schema migrations when the service starts (else: `feedcore migrate`).
    migrate_on_start: bool = False
    #: With it, feeds are cached in Redis, shared by every server and processor. A Redis Cluster
    #: is named by the scheme ``redis+cluster://`` (``rediss+cluster://`` with TLS) and any one
    #: of its nodes, e.g. ``redis+cluster://10.0.0.5:6379``.
    redis_url: str | None = None
    redis_prefix: str = "feedcore:"
    #: How long a Redis command may take before the cache is given up for PostgreSQL.
    redis_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    #: Connections to Redis per process: as many for the read path's lanes, and as many for the
    #: rest; a request waits for a free one up to the timeout above.
    redis_pool_max: Annotated[int, msgspec.Meta(ge=1)] = 128
    #: Kafka brokers, ``host:port[,host:port...]``; with it, events travel through Kafka and
    #: `feedcore process` applies them.
    kafka_bootstrap: str | None = None
    kafka_topic: str = "feedcore.events"
    #: Default: the main topic's name followed by ``.dlq``.
    kafka_dlq_topic: str | None = None
    #: Partitions of the main topic when feedcore creates it (the dead-letter topic gets one).
    kafka_partitions: Positive = 6
    kafka_replication: Positive = 1
    kafka_group: str = "feedcore-processor"
    #: Tries of an event whose handler keeps failing before it goes to the dead-letter topic.
    max_attempts: Positive = 5
    #: Cap of the backoff between retries, in seconds.
    retry_max_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    #: How long `feedcore process` and `feedcore relay` may take to finish their batch on SIGTERM.
    shutdown_seconds: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    #: Where `feedcore process` and `feedcore relay` serve Prometheus metrics; unset: nowhere.
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65_535)] | None = None
    #: Writes per second per user, and the burst allowed above it; 0 switches the limit off.
    rate_limit_per_second: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    rate_limit_burst: Positive = 40
    max_body_bytes: Positive = 64 * 1024
    #: How long a request's line and headers may take to arrive, counted from the connection's
    #: opening or the end of its previous response: it also closes idle kept-alive connections, so
    #: keep it above the idle timeout of a load balancer in front (the balancer should close first).
    header_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    #: How long a request's body may take to arrive after its headers; beyond it the answer is 408.
    body_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    #: Connections each server process holds at once, idle ones included; more wait to be accepted.
    #: Keep it below the open-files limit (`ulimit -n`), less what the process's pools use.
    max_connections: Positive = 4096
    #: Live feed streams (GET /feeds/{user}/stream) each server process holds at once; past them
    #: the answer is 503 with Retry-After.
    max_streams: Positive = 2048
    #: How often an idle stream sends a comment line, so that proxies keep it open.
    stream_heartbeat_seconds: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    #: How often a stream reads its feed when no one announces changes (events applied by
    #: `feedcore process`, and no Redis to announce them through).
    stream_poll_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    idempotency_ttl_hours: Annotated[int, msgspec.Meta(ge=24)] = 24
    #: How long the processor's ledger remembers an applied event: a week, Kafka's default retention.
    ledger_retention_hours: Positive = 168
    #: How often each server deletes expired Idempotency-Keys and ledger marks, in seconds.
    prune_every_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    celebrity_threshold: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    backfill_limit: Positive = 200
    cache_window: Positive = 800
    #: Followers written per fan-out statement.
    fanout_chunk: Positive = 1_000
    node_id: Annotated[int, msgspec.Meta(ge=0, le=1023)] = 0
    log_level: Literal[
        "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "critical", "error", "warning", "info", "debug"
    ] = "INFO"
    #: ``json`` lines or readable ``text``; ``auto``: JSON unless embedded.
    log_format: Literal["auto", "json", "text"] = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        raw = {
            name[len(PREFIX) :].lower(): value
            for name, value in environ.items()
            # FEEDCORE_TEST_* variables belong to the test suite, not to the service.
            if name.startswith(PREFIX) and not name.startswith(TEST_PREFIX)
        }
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as error:
            raise ConfigurationError(f"bad {PREFIX}* setting: {_environment_name(str(error))}") from None

    @property
    def embedded(self) -> bool:
        return not (self.database_url or self.redis_url or self.kafka_bootstrap)

    @property
    def policies(self) -> Policies:
        return Policies(
            celebrity_threshold=self.celebrity_threshold,
            backfill_limit=self.backfill_limit,
            cache_window=self.cache_window,
            fanout_chunk=self.fanout_chunk,
        )

    @property
    def dead_letter_topic(self) -> str:
        return self.kafka_dlq_topic or f"{self.kafka_topic}.dlq"

    def check(self, *, serving: bool = True) -> None:
        """Refuse configurations this process cannot run as; ``serving``: the HTTP API, which needs a secret."""
        if self.redis_url and not self.database_url:
            raise ConfigurationError(
                f"{PREFIX}REDIS_URL needs {PREFIX}DATABASE_URL: Redis caches feeds that PostgreSQL keeps"
            )
        if self.kafka_bootstrap and not self.database_url:
            raise ConfigurationError(
                f"{PREFIX}KAFKA_BOOTSTRAP needs {PREFIX}DATABASE_URL: events leave through an outbox in PostgreSQL"
            )
        if self.dead_letter_topic == self.kafka_topic:
            raise ConfigurationError(f"{PREFIX}KAFKA_DLQ_TOPIC must differ from {PREFIX}KAFKA_TOPIC")
        if self.database_pool_min > self.database_pool_max:
            raise ConfigurationError(f"{PREFIX}DATABASE_POOL_MIN exceeds {PREFIX}DATABASE_POOL_MAX")
        if serving and not self.embedded and self.jwt_secret is None:
            raise ConfigurationError(
                f"{PREFIX}JWT_SECRET (at least {MIN_SECRET_BYTES} bytes) is required outside embedded mode"
            )
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"{PREFIX}JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")

    def secret_file(self) -> Path:
        if self.dev_secret_file:
            return Path(self.dev_secret_file)
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "feedcore" / "dev-jwt-secret"


def _environment_name(message: str) -> str:
    # msgspec names fields as `$.rate_limit_burst` or `rate_limit_burst`; the user set
    # FEEDCORE_RATE_LIMIT_BURST.
    unknown = re.fullmatch(r"Object contains unknown field `(\w+)`", message)
    if unknown:
        return f"{PREFIX}{unknown.group(1).upper()} is not a setting feedcore knows"
    head, _, field = message.partition(" - at `$.")
    return f"{PREFIX}{field.rstrip('`').upper()}: {head}" if field else message
