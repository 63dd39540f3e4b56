from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Final

import msgspec

from feedcore.adapters.redis.connection import RedisClient
from feedcore.adapters.redis.resilient import UNAVAILABLE
from feedcore.ports import FeedsChanged

_log = logging.getLogger(__name__)
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(FeedsChanged)
_FIRST_BACKOFF: Final = 0.1
_MAX_BACKOFF: Final = 5.0


class RedisFeedChanges:
    """Announcements through one Redis pub/sub channel (``<prefix>feeds-changed``): one PUBLISH per
    announcement, one subscription per listening process.

    Pub/sub keeps nothing for a subscriber that is away, which is what the port asks: a listener
    whose connection was lost hears None once it is subscribed again.
    """

    def __init__(self, client: RedisClient, *, prefix: str) -> None:
        self._client = client
        self.channel = f"{prefix}feeds-changed"

    async def announce(self, change: FeedsChanged) -> None:
        try:
            await self._client.publish(self.channel, _encoder.encode(change))
        except UNAVAILABLE as error:
            # The feeds have the change; streams see it at their next wake-up.
            _log.debug("a feed change could not be announced: %r", error)

    async def listen(self) -> AsyncIterator[FeedsChanged | None]:
        backoff = _FIRST_BACKOFF
        while True:
            subscription = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await subscription.subscribe(self.channel)
                backoff = _FIRST_BACKOFF
                yield None
                # Blocks without a timeout: an idle subscription costs nothing but its socket.
                async for message in subscription.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        yield _decoder.decode(message["data"])
                    except msgspec.DecodeError:  # not one of ours: a stray publisher on the channel
                        _log.warning("ignored an undecodable message on %s", self.channel)
            except UNAVAILABLE as error:
                _log.warning(
                    "lost the subscription to %s (%r); subscribing again in %.1fs", self.channel, error, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                await subscription.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
