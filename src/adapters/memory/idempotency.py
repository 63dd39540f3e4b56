from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from feedcore.model import Post, UserId
from feedcore.ports import Clock, IdempotencyRecord


class IdempotencyRecords:
    """The post store's Idempotency-Key records, forgotten ``ttl`` after they were made."""

    def __init__(self, clock: Clock, ttl: timedelta) -> None:
        self._clock = clock
        self._ttl = ttl
        # Oldest first, so expired records are dropped from the front.
        self._records: OrderedDict[tuple[UserId, str], tuple[datetime, IdempotencyRecord]] = OrderedDict()

    def find(self, user: UserId, key: str) -> IdempotencyRecord | None:
        self._expire()
        found = self._records.get((user, key))
        return found[1] if found is not None else None

    def record(self, user: UserId, key: str, fingerprint: str, post: Post) -> None:
        self._records[(user, key)] = (self._clock.now(), IdempotencyRecord(fingerprint=fingerprint, post=post))

    def _expire(self) -> None:
        oldest = self._clock.now() - self._ttl
        while self._records:
            claimed_at, _ = next(iter(self._records.values()))
            if claimed_at > oldest:
                return
            self._records.popitem(last=False)
