"""The feed invariant of DESIGN.md as a state machine, run on the in-memory adapters by the unit
tests and on PostgreSQL and Redis by the integration tests.

Several users post, delete, follow, unfollow, mute, unmute, block and unblock while the outbox relay
and the processor run in any order the bus allows: partitions delivered in any interleaving, batches
applied but not committed, consumer restarts that redeliver them, and relay crashes after publishing
that publish the same events again later. After draining, every home feed must equal the oracle
(complete, newest first, no duplicates, no deleted posts, no muted author, no one in a block with
the reader) whatever the page sizes, and the materialised state must be exact. With a celebrity
threshold of one follower, authors cross it in both directions all the time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from feedcore import (
    CelebrityWindows,
    Clock,
    Event,
    FeedCache,
    FollowBlocked,
    Policies,
    PostBodies,
    PostId,
    SelfBlock,
    SelfFollow,
    SelfMute,
    UserId,
)
from tests.support.world import Adapters, World, memory_adapters

T = TypeVar("T")

USERS = ["ana", "bo", "cy"]
PARTITIONS = 3
POLICIES = Policies(
    celebrity_threshold=1,
    backfill_limit=2,
    cache_window=3,
    fanout_chunk=2,
    default_page_size=3,
    max_page_size=10,
)

users = st.sampled_from(USERS)
page_sizes = st.lists(st.integers(min_value=1, max_value=POLICIES.max_page_size), min_size=1, max_size=4)


class _RelayCrashed(Exception):
    """The relay died after the broker took the events and before the outbox forgot them."""


class _ProcessorCrashed(Exception):
    """The processor died after committing an event's store effects, before updating the cache."""


class _Crash:
    """The switch that makes the processor's next cache write kill it instead."""

    def __init__(self) -> None:
        self.next = False

    def wrap(self, port: Any, *writes: str) -> Any:
        """``port``, with the methods named ``writes`` crashing when the switch is on."""
        crash = self

        class Crashing:
            def __getattr__(self, name: str) -> Any:
                method = getattr(port, name)
                if name not in writes:
                    return method

                async def crashing(*args: Any, **kwargs: Any) -> Any:
                    if crash.next:
                        crash.next = False
                        raise _ProcessorCrashed
                    return await method(*args, **kwargs)

                return crashing

        return Crashing()


class FeedMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = self.event_loop()
        self.world = World(POLICIES, partitions=PARTITIONS, adapters=self.adapters, caches=self.caches())
        self.crash = _Crash()
        self.world.processor = self.world.make_processor(
            self.crash.wrap(self.world.cache, "add", "remove", "drop"),
            self.crash.wrap(self.world.celebrity_windows, "add", "remove"),
            self.crash.wrap(self.world.bodies, "keep", "bury"),
        )
        # The model: what the truth is, independently of any feed.
        self.live: dict[PostId, str] = {}
        self.follows: set[tuple[str, str]] = set()
        self.mutes: set[tuple[str, str]] = set()
        self.blocks: set[tuple[str, str]] = set()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.drain_and_check()
        finally:
            self.close()

    # --- what a subclass running on other adapters overrides ------------------------------------

    def event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def adapters(self, clock: Clock) -> Adapters:
        return memory_adapters(clock)  # as the embedded service wires them

    def caches(self) -> tuple[FeedCache, CelebrityWindows, PostBodies] | None:
        return None  # the wiring's own, in memory

    def close(self) -> None:
        self.loop.close()

    # --- what users do -------------------------------------------------------------------------

    @initialize(
        edges=st.lists(st.tuples(users, users), max_size=6),
        posts=st.lists(users, min_size=1, max_size=8),
    )
    def populate(self, edges: list[tuple[str, str]], posts: list[str]) -> None:
        """Start from a graph and some posts, so that every example has something to get wrong."""
        for follower, followee in edges:
            self.follow(follower, followee)
        for author in posts:
            self.publish(author, 1)

    @rule(author=users, pause=st.integers(min_value=0, max_value=3))
    def publish(self, author: str, pause: int) -> None:
        self.world.tick(pause)
        post = self.run(self.world.publish(author))
        self.live[post.id] = author

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        post_id = data.draw(st.sampled_from(sorted(self.live)))
        self.run(self.world.delete(self.live.pop(post_id), post_id))

    @rule(follower=users, followee=users)
    def follow(self, follower: str, followee: str) -> None:
        if follower == followee:
            try:
                self.run(self.world.follow(follower, followee))
            except SelfFollow:
                return
            raise AssertionError("following oneself must be refused")
        if self.blocked(follower, followee):
            try:
                self.run(self.world.follow(follower, followee))
            except FollowBlocked:
                return
            raise AssertionError("a follow across a block must be refused")
        self.run(self.world.follow(follower, followee))
        self.follows.add((follower, followee))

    @rule(follower=users, followee=users)
    def unfollow(self, follower: str, followee: str) -> None:
        self.run(self.world.unfollow(follower, followee))
        self.follows.discard((follower, followee))

    @rule(user=users, author=users)
    def mute(self, user: str, author: str) -> None:
        if user == author:
            with contextlib.suppress(SelfMute):
                self.run(self.world.mute(user, author))
                raise AssertionError("muting oneself must be refused")
            return
        self.run(self.world.mute(user, author))
        self.mutes.add((user, author))

    @rule(user=users, author=users)
    def unmute(self, user: str, author: str) -> None:
        self.run(self.world.unmute(user, author))
        self.mutes.discard((user, author))

    @rule(blocker=users, blocked=users)
    def block(self, blocker: str, blocked: str) -> None:
        if blocker == blocked:
            with contextlib.suppress(SelfBlock):
                self.run(self.world.block(blocker, blocked))
                raise AssertionError("blocking oneself must be refused")
            return
        self.run(self.world.block(blocker, blocked))
        self.blocks.add((blocker, blocked))
        self.follows -= {(blocker, blocked), (blocked, blocker)}

    @rule(blocker=users, blocked=users)
    def unblock(self, blocker: str, blocked: str) -> None:
        self.run(self.world.unblock(blocker, blocked))
        self.blocks.discard((blocker, blocked))

    def blocked(self, one: str, other: str) -> bool:
        return (one, other) in self.blocks or (other, one) in self.blocks

    # --- what the machinery does ---------------------------------------------------------------

    @rule(follower=users, followee=users, times=st.integers(min_value=2, max_value=5))
    def flap(self, follower: str, followee: str, times: int) -> None:
        """Follow and unfollow in quick succession, as a hesitant user does."""
        for _ in range(times):
            if (follower, followee) in self.follows:
                self.unfollow(follower, followee)
            else:
                self.follow(follower, followee)

    @precondition(lambda self: self.run(self.world.outbox.backlog()) > 0)
    @rule(data=st.data(), sizes=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=3))
    def relay(self, data: st.DataObject, sizes: list[int]) -> None:
        """Relays claim batches one after another, then publish them in any order; one may die
        after publishing and before forgetting its batch, which is then published again later."""
        order = data.draw(st.permutations(range(len(sizes))))
        crashing = data.draw(st.none() | st.sampled_from(range(len(sizes))))
        self.run(self._relay(sizes, order, crashing))

    async def _relay(self, sizes: list[int], order: list[int], crashing: int | None) -> None:
        bus, outbox = self.world.bus, self.world.outbox
        claimed = [asyncio.Event() for _ in sizes]
        go = [asyncio.Event() for _ in sizes]

        def publisher(index: int) -> Callable[[Sequence[Event]], Awaitable[None]]:
            async def publish(events: Sequence[Event]) -> None:
                claimed[index].set()
                await go[index].wait()
                await bus.publish(events)
                if index == crashing:
                    raise _RelayCrashed

            return publish

        async def relay(index: int) -> None:
            with contextlib.suppress(_RelayCrashed):
                if not await outbox.relay(publisher(index), limit=sizes[index]):
                    claimed[index].set()

        relays = []
        for index in range(len(sizes)):
            relays.append(asyncio.ensure_future(relay(index)))
            await claimed[index].wait()
        for index in order:
            go[index].set()
            await relays[index]

    @precondition(lambda self: self.world.bus.undelivered())
    @rule(data=st.data(), count=st.integers(1, 4), commit=st.booleans(), crash=st.booleans(), batched=st.booleans())
    def deliver(self, data: st.DataObject, count: int, commit: bool, crash: bool, batched: bool) -> None:
        """Apply a few events of one partition, one at a time or as one batch; commit them, or
        not, or crash on the way."""
        partition = data.draw(st.sampled_from(self.world.bus.undelivered()))
        deliveries = self.world.bus.take(count, partition=partition)
        self.crash.next = crash
        try:
            if batched:
                self.run(self.world.processor.apply_all([delivery.event for delivery in deliveries]))
            for delivery in [] if batched else deliveries:
                self.run(self.world.processor.apply(delivery.event))
        except _ProcessorCrashed:
            self.world.bus.rewind()
            return
        finally:
            self.crash.next = False
        if commit:
            self.run(self.world.bus.commit(deliveries))

    @rule()
    def restart_consumer(self) -> None:
        self.world.bus.rewind()

    @rule(user=users)
    def evict_cached_feed(self, user: str) -> None:
        assert self.world.cache is not None
        self.run(self.world.cache.drop(UserId(user)))

    @rule(user=users, sizes=page_sizes)
    def read_while_busy(self, user: str, sizes: list[int]) -> None:
        # Before draining, a feed may lag behind, but what it shows is true now and in order. Read
        # twice: the first read of a cached feed keeps its first page, the second may be served it.
        for _ in range(2):
            seen = [post.id for post in self.run(self.world.whole_feed(user, sizes))]
            assert seen == sorted(set(seen), reverse=True)
            assert set(seen) <= set(self.expected_feed(user))

    @rule()
    def drain_and_check(self) -> None:
        self.run(self.world.drain())
        assert self.world.bus.lag == 0
        for user in USERS:
            self.check_user(user)

    @invariant()
    def counts_match_the_model(self) -> None:
        for user in USERS:
            profile = self.run(self.world.profile(user))
            assert profile.followers == sum(1 for _, followee in self.follows if followee == user)
            assert profile.following == sum(1 for follower, _ in self.follows if follower == user)
            assert profile.posts == sum(1 for author in self.live.values() if author == user)

    # --- the oracle ----------------------------------------------------------------------------

    def sources(self, user: str) -> set[str]:
        """The user, and whom the user follows now, does not mute and is in no block with."""
        return {user} | {
            followee
            for follower, followee in self.follows
            if follower == user and (user, followee) not in self.mutes and not self.blocked(user, followee)
        }

    def expected_feed(self, user: str) -> list[PostId]:
        sources = self.sources(user)
        return sorted((post_id for post_id, author in self.live.items() if author in sources), reverse=True)

    def check_user(self, user: str) -> None:
        expected = self.expected_feed(user)
        for sizes in ([1], [2, 5], [POLICIES.max_page_size], [3, 1, 4]):
            # Twice: the second read of a first page may be served as the first one kept it.
            for _ in range(2):
                assert [post.id for post in self.run(self.world.whole_feed(user, sizes))] == expected
        self.check_materialised(user, expected)

    def check_materialised(self, user: str, expected: list[PostId]) -> None:
        """The processor's state is exact, not merely hidden by the read path's checks."""
        world, owner = self.world, UserId(user)
        posts = self.run(world.posts.get_many(expected))
        fanned = [post_id for post_id in expected if posts[post_id].fan_out]
        horizon = self.run(world.feeds.horizon(owner))
        stored = self.run(world.feeds.entries(owner, before=None, floor=PostId(0), limit=10_000))
        assert [post_id for post_id in stored if post_id >= horizon] == [p for p in fanned if p >= horizon]
        assert set(stored) <= set(fanned)
        assert world.cache is not None
        cached = self.run(world.cache.view(owner, before=None, limit=10_000)).window
        if cached is not None:
            bound = max(cached.horizon, horizon)
            assert [p for p in cached.entries if p >= bound] == [p for p in stored if p >= bound]
