"""feedcore inside a program of your own: one object with every use case, on the adapters the
settings choose, and the work that carries events to the feeds running beside it.

    async with open_feeds() as feeds:                      # in memory: nothing is persisted
        await feeds.follow("ana", "bo")
        post = await feeds.publish("bo", "hello")
        await feeds.settled()                              # the fan-out has caught up
        page = await feeds.home("ana", limit=20)

With ``database_url`` (and optionally ``redis_url`` and ``kafka_bootstrap``) the same object runs on
PostgreSQL, Redis and Kafka, wired as `feedcore serve` is: this module builds on the same
containers and background loops, so a program that embeds feedcore and the HTTP API behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import msgspec
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from feedcore import (
    HomeFeeds,
    Outbox,
    Page,
    Post,
    PostId,
    Posts,
    Profile,
    Social,
    Unavailable,
    UserId,
    parse_post_id,
    parse_user_id,
)
from feedcore.adapters.kafka import unconsumed
from feedcore.adapters.memory import InMemoryEventBus
from feedcore.entrypoints.container import awaited, build_containers
from feedcore.entrypoints.kafka import KAFKA_UNAVAILABLE, admin, reader, started
from feedcore.entrypoints.runtime import background_work
from feedcore.entrypoints.settings import Settings

__all__ = ["Feeds", "Settings", "open_feeds"]

_log = logging.getLogger(__name__)
#: How often :meth:`Feeds.settled` looks again while events are on their way.
_SETTLE_POLL_SECONDS = 0.02
#: The lag of a processor group that could not be asked: some, as far as anyone knows.
_UNKNOWN = 1


class Feeds:
    """Posts, follows and feeds, on the adapters :func:`open_feeds` chose.

    User ids are strings of 1 to 64 characters of ``[A-Za-z0-9_.-]``; post ids are the ``id`` of a
    :class:`~feedcore.Post`, as an int or its decimal string. Every error is one of
    :mod:`feedcore.errors`: a bad id, limit or cursor is an ``InvalidInput``, a missing post a
    ``PostNotFound``, a store out of reach ``Unavailable`` (retry later).

    Publishing stores a post at once; it reaches followers' feeds asynchronously, as in the
    service. :meth:`settled` waits for that.
    """

    def __init__(
        self,
        *,
        posts: Posts,
        social: Social,
        home_feeds: HomeFeeds,
        outbox: Outbox,
        unapplied: Callable[[], Awaitable[int]],
        unavailable: tuple[type[Exception], ...] = (),
    ) -> None:
        self._posts = posts
        self._social = social
        self._home_feeds = home_feeds
        self._outbox = outbox
        self._unapplied = unapplied
        self._unavailable = unavailable

    async def publish(self, author: str, content: str, *, idempotency_key: str | None = None) -> Post:
        """Publish a post of ``author``'s; with an ``idempotency_key``, a repeat returns the first post."""
        with self._translated():
            return await self._posts.publish(parse_user_id(author), content, idempotency_key=idempotency_key)

    async def delete(self, author: str, post_id: int | str) -> None:
        """Delete one of ``author``'s posts: ``Forbidden`` for anyone else's."""
        with self._translated():
            await self._posts.delete(parse_user_id(author), _post_id(post_id))

    async def post(self, post_id: int | str) -> Post:
        """One live post; ``PostNotFound`` when it never existed or was deleted."""
        with self._translated():
            return await self._posts.get(_post_id(post_id))

    async def follow(self, follower: str, followee: str) -> None:
        """``follower`` follows ``followee`` (again: no change); the followee's recent posts join the feed."""
        with self._translated():
            await self._social.follow(parse_user_id(follower), parse_user_id(followee))

    async def unfollow(self, follower: str, followee: str) -> None:
        """``follower`` stops following ``followee``; the followee's posts leave the feed at once."""
        with self._translated():
            await self._social.unfollow(parse_user_id(follower), parse_user_id(followee))

    async def mute(self, user: str, author: str) -> None:
        """Hide ``author``'s posts from ``user``'s home feed at once; ``author`` is not told."""
        with self._translated():
            await self._social.mute(parse_user_id(user), parse_user_id(author))

    async def unmute(self, user: str, author: str) -> None:
        """Show ``author``'s posts in ``user``'s home feed again, if ``user`` follows them."""
        with self._translated():
            await self._social.unmute(parse_user_id(user), parse_user_id(author))

    async def block(self, blocker: str, blocked: str) -> None:
        """End the follows between the two, both ways, and refuse new ones (``FollowBlocked``)."""
        with self._translated():
            await self._social.block(parse_user_id(blocker), parse_user_id(blocked))

    async def unblock(self, blocker: str, blocked: str) -> None:
        """Lift ``blocker``'s block: follows are allowed again, none is restored."""
        with self._translated():
            await self._social.unblock(parse_user_id(blocker), parse_user_id(blocked))

    async def home(self, user: str, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        """One page of ``user``'s home feed, newest first: the first, or the one after ``cursor``
        (the previous page's ``next_cursor``). ``limit``: 1 to 100 posts, 20 by default."""
        with self._translated():
            reader = parse_user_id(user)
            return await self._home_feeds.page(reader, reader, limit=limit, cursor=cursor)

    async def pages(self, user: str, *, limit: int | None = None) -> AsyncIterator[Page[Post]]:
        """``user``'s whole home feed, page after page: each post once, with no gap, even while
        new posts arrive (they are newer than the first page)."""
        cursor = None
        while True:
            page = await self.home(user, limit=limit, cursor=cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def timeline(self, author: str, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        """One page of ``author``'s own posts, newest first."""
        with self._translated():
            return await self._posts.timeline(parse_user_id(author), limit=limit, cursor=cursor)

    async def profile(self, user: str) -> Profile:
        """``user``'s follower, following and post counts."""
        with self._translated():
            return await self._posts.profile(parse_user_id(user))

    async def followers(self, user: str, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        """One page of who follows ``user``, in ascending id order."""
        with self._translated():
            return await self._social.followers(parse_user_id(user), limit=limit, cursor=cursor)

    async def following(self, user: str, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        """One page of whom ``user`` follows, in ascending id order."""
        with self._translated():
            return await self._social.following(parse_user_id(user), limit=limit, cursor=cursor)

    async def settled(self, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109  # one call, in a test or a script
        """Return once the fan-out has caught up with everything published so far: no event left
        in the outbox, and every event relayed from it applied to the feeds. ``TimeoutError``
        after ``timeout`` seconds.

        For tests and scripts: a reader of the service never needs to wait, since a page read
        right after a write already leaves out what was unfollowed or deleted.
        """
        async with asyncio.timeout(timeout):
            # What is awaited may happen in other processes (a relay, a processor): no event of
            # this one's says when, so it looks again.
            while await self._pending():  # noqa: ASYNC110
                await asyncio.sleep(_SETTLE_POLL_SECONDS)

    async def _pending(self) -> bool:
        with self._translated():
            # The outbox first: an event leaves it only once the bus has it, so when the outbox is
            # seen empty, whatever it held is counted by the bus's lag (the other order could miss
            # an event that moved in between).
            return bool(await self._outbox.backlog(at_most=1) or await self._unapplied())

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        return _as_unavailable(self._unavailable)


@contextlib.asynccontextmanager
async def open_feeds(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    kafka_bootstrap: str | None = None,
    migrate: bool = True,
    run_processor: bool = True,
) -> AsyncIterator[Feeds]:
    """feedcore, running in this program until the block ends.

    Without any URL, everything lives in memory, and nothing is persisted. With ``database_url``,
    posts, follows and feeds are kept in PostgreSQL (its schema migrated first, unless ``migrate``
    is False); ``redis_url`` adds the feed cache in Redis. Without Kafka, the fan-out runs in this
    program, as a task. With ``kafka_bootstrap``, events leave through the outbox to Kafka, and
    this program also runs a member of the processor group as a task, unless ``run_processor``
    is False because `feedcore process` runs elsewhere (:meth:`Feeds.settled` then waits for it).

    ``settings`` holds every other knob (policies, pools, topic names; see
    :class:`~feedcore.entrypoints.settings.Settings`); the URLs given here, and ``migrate``,
    replace its own. Nothing is read from the environment: pass ``Settings.from_env()`` for that.
    """
    settings = settings or Settings()
    chosen = {
        name: value
        for name, value in (
            ("database_url", database_url),
            ("redis_url", redis_url),
            ("kafka_bootstrap", kafka_bootstrap),
        )
        if value is not None
    }
    settings = msgspec.structs.replace(settings, **chosen, migrate_on_start=migrate)
    built = build_containers(settings)
    unavailable = built.storage.unavailable_errors()
    async with contextlib.AsyncExitStack() as held:
        with _as_unavailable(unavailable):  # a database out of reach at the start, too
            await held.enter_async_context(background_work(built, settings, kafka_processor=run_processor))
        unapplied: Callable[[], Awaitable[int]]
        if settings.kafka_bootstrap:
            unapplied = _GroupLag(settings, held).count
        else:
            bus: InMemoryEventBus = built.app.bus()
            unapplied = _lag_of(bus)
        yield Feeds(
            posts=await awaited(built.app.posts()),
            social=await awaited(built.app.social()),
            home_feeds=await awaited(built.app.home_feeds()),
            outbox=await awaited(built.storage.outbox()),
            unapplied=unapplied,
            unavailable=unavailable,
        )


@contextlib.contextmanager
def _as_unavailable(errors: tuple[type[Exception], ...]) -> Iterator[None]:
    """The store's own "out of reach" ``errors``, raised as the core's ``Unavailable``."""
    try:
        yield
    except errors as error:
        raise Unavailable(f"the store is unavailable: {error}") from error


def _post_id(raw: int | str) -> PostId:
    return parse_post_id(str(raw))


def _lag_of(bus: InMemoryEventBus) -> Callable[[], Awaitable[int]]:
    async def lag() -> int:
        return bus.lag

    return lag


class _GroupLag:
    """The events of the main topic the processor group has not committed yet, read with clients
    started at the first count (once Kafka answers) and kept until the feeds close."""

    def __init__(self, settings: Settings, held: contextlib.AsyncExitStack) -> None:
        self._settings = settings
        self._held = held
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None
        self._lock = asyncio.Lock()

    async def count(self) -> int:
        async with self._lock:
            if self._clients is None:
                self._clients = await self._start()
        client, bounds = self._clients
        try:
            return await unconsumed(client, bounds, topic=self._settings.kafka_topic, group=self._settings.kafka_group)
        except KAFKA_UNAVAILABLE as error:
            # Not known to be settled: the caller looks again, until its timeout.
            _log.debug("could not read the processor group's lag: %r", error)
            return _UNKNOWN

    async def _start(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        settings, never = self._settings, asyncio.Event()
        what = "reading the processor group's lag"
        client = await self._held.enter_async_context(started(lambda: admin(settings), never, what=what))
        bounds = await self._held.enter_async_context(
            started(lambda: reader(settings, client_id="feedcore-settled"), never, what=what)
        )
        if client is None or bounds is None:  # `started` gives None only once its stop is set
            raise RuntimeError("a Kafka client gave up before it started")
        return client, bounds
