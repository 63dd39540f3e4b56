"""Settings from ``FEEDCORE_*`` environment variables, checked as a whole at startup."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final

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
    redis_url: str | None = None
    kafka_bootstrap: str | None = None
    #: Writes per second per user, and the burst allowed above it; 0 switches the limit off.
    rate_limit_per_second: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    rate_limit_burst: Positive = 40
    max_body_bytes: Positive = 64 * 1024
    idempotency_ttl_hours: Annotated[int, msgspec.Meta(ge=24)] = 24
    celebrity_threshold: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    backfill_limit: Positive = 200
    cache_window: Positive = 800
    node_id: Annotated[int, msgspec.Meta(ge=0, le=1023)] = 0
    log_level: str = "INFO"

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
        )

    def check(self) -> None:
        """Refuse configurations this process cannot run as."""
        given = [n for n in ("redis_url", "kafka_bootstrap") if getattr(self, n)]
        if given:
            raise ConfigurationError(
                f"{', '.join(PREFIX + n.upper() for n in given)} set, but this version of feedcore has no "
                "Redis or Kafka adapter yet: unset them (FEEDCORE_DATABASE_URL alone runs on PostgreSQL)"
            )
        if self.database_pool_min > self.database_pool_max:
            raise ConfigurationError(f"{PREFIX}DATABASE_POOL_MIN exceeds {PREFIX}DATABASE_POOL_MAX")
        if not self.embedded and self.jwt_secret is None:
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
