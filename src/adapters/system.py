"""Adapters on the standard library alone."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
