from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class InMemoryRateLimiter:
    """A token bucket per key: ``rate`` tokens a second, holding at most ``burst``."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def acquire(self, key: str) -> float:
        """Take one token; returns 0 when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - updated) * self._rate)
        waited = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            waited = (1 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            # The least recently seen key goes; a forgotten bucket starts full again, which errs
            # on the side of letting a quiet user write.
            self._buckets.popitem(last=False)
        return waited
