from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from feedcore.model import Post, UserId
from feedcore.ports import Clock, IdempotencyRecord


class InMemoryIdempotencyKeys:
    """Idempotency-Key records, forgotten ``ttl`` after the request that claimed them."""

    def __init__(self, clock: Clock, *, ttl: timedelta = timedelta(hours=24)) -> None:
        self._clock = clock
        self._ttl = ttl
        # Oldest first, so expired records are dropped from the front.
        self._records: OrderedDict[tuple[UserId, str], tuple[datetime, IdempotencyRecord]] = OrderedDict()

    async def reserve(self, user: UserId, key: str, fingerprint: str) -> IdempotencyRecord | None:
        self._expire()
        found = self._records.get((user, key))
        if found is not None:
            return found[1]
        self._records[(user, key)] = (self._clock.now(), IdempotencyRecord(fingerprint=fingerprint))
        return None

    async def release(self, user: UserId, key: str) -> None:
        found = self._records.get((user, key))
        if found is not None and found[1].post is None:
            del self._records[(user, key)]

    def complete(self, user: UserId, key: str, post: Post) -> None:
        """Record the post an in-flight claim produced; the post store calls it as it stores the post."""
        claimed_at, record = self._records[(user, key)]
        self._records[(user, key)] = (claimed_at, IdempotencyRecord(fingerprint=record.fingerprint, post=post))

    def _expire(self) -> None:
        oldest = self._clock.now() - self._ttl
        while self._records:
            claimed_at, _ = next(iter(self._records.values()))
            if claimed_at > oldest:
                return
            self._records.popitem(last=False)
