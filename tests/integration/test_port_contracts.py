"""The ports' documented contracts, each checked once against every adapter of the port.

Every test body below runs twice, through the ``ports`` fixture: on the in-memory adapters and on the
PostgreSQL ones (on this session's database, emptied before each test). A test body never asks
which adapter it drives: what it asserts is what :mod:`feedcore.ports` promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.memory import ManualClock
from adapters.postgres import connection_pool
from feedcore.events import Event, PostDeleted, PostPublished, UserFollowed, UserUnfollowed
from feedcore.model import MAX_POST_ID, Post, PostId, UserId
from feedcore.ports import (
    FollowCounts,
    IdempotencyClaim,
    IdempotencyRecord,
    Outbox,
)
from tests.integration.conftest import TABLES, postgres_adapters
from tests.unit.world import Adapters, memory_adapters

BASE_TIME: Final = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
OCCURRED_AT: Final = datetime(2026, 3, 4, 5, 6, 8, 123_456, tzinfo=UTC)
WAIT: Final = 10.0

ANA: Final = UserId("ana")
BOB: Final = UserId("bob")
CID: Final = UserId("cid")
DEE: Final = UserId("dee")


# --- the adapters under test --------------------------------------------------------------------


@pytest.fixture(params=["memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for the in-memory adapters, else the URL of a migrated database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("migrated_database"))
    return None


@asynccontextmanager
async def postgres_ports(database: str) -> AsyncIterator[tuple[Adapters, AsyncConnectionPool[Any]]]:
    """The PostgreSQL adapters on empty tables, and their pool."""
    pool = connection_pool(database, min_size=1, max_size=4)
    await pool.open(wait=True, timeout=WAIT)
    try:
        async with pool.connection() as connection:
            await connection.execute(f"TRUNCATE {TABLES}")
        yield postgres_adapters(pool), pool
    finally:
        await pool.close()


@pytest.fixture
async def ports(backend: str | None) -> AsyncIterator[Adapters]:
    if backend is None:
        yield memory_adapters(ManualClock())
        return
    async with postgres_ports(backend) as (adapters, _):
        yield adapters


# --- building blocks -----------------------------------------------------------------------------


def post(number: int, author: UserId = ANA, *, fan_out: bool = True) -> Post:
    return Post(
        id=PostId(number),
        author_id=author,
        content=f"post {number} by {author}: héllo ✓",
        created_at=BASE_TIME + timedelta(seconds=number % 100_000, microseconds=number % 997),
        fan_out=fan_out,
    )


def ids_of(*numbers: int) -> list[PostId]:
    return [PostId(number) for number in numbers]


def published(item: Post) -> PostPublished:
    return PostPublished(
        event_id=f"published-{item.id}", occurred_at=OCCURRED_AT, post_id=item.id, author_id=item.author_id
    )


def deleted(item: Post) -> PostDeleted:
    return PostDeleted(
        event_id=f"deleted-{item.id}", occurred_at=OCCURRED_AT, post_id=item.id, author_id=item.author_id
    )


def followed(follower: UserId, followee: UserId, tag: str = "") -> UserFollowed:
    return UserFollowed(
        event_id=f"followed-{follower}-{followee}{tag}",
        occurred_at=OCCURRED_AT,
        follower_id=follower,
        followee_id=followee,
    )


def unfollowed(follower: UserId, followee: UserId, tag: str = "") -> UserUnfollowed:
    return UserUnfollowed(
        event_id=f"unfollowed-{follower}-{followee}{tag}",
        occurred_at=OCCURRED_AT,
        follower_id=follower,
        followee_id=followee,
    )


async def publish_all(ports: Adapters, posts: Sequence[Post]) -> None:
    for item in posts:
        await ports.posts.publish(item, published(item))


class Collector:
    """A publish function that keeps every batch it is handed."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


class BusDown(Exception):
    """What a failing publish function raises."""


async def failing_publish(events: Sequence[Event]) -> None:
    raise BusDown(f"{len(events)} events not published")


async def drain(outbox: Outbox) -> list[Event]:
    """Relay until the outbox is empty; every event published, oldest first."""
    collector = Collector()
    while await outbox.relay(collector, limit=3):
        pass
    return collector.events


def ids(posts: Sequence[Post]) -> list[int]:
    return [int(item.id) for item in posts]


# --- PostStore -----------------------------------------------------------------------------------


class TestPostStore:
    async def test_a_published_post_reads_back_equal(self, ports: Adapters) -> None:
        first, second = post(11), post(12, BOB, fan_out=False)
        await publish_all(ports, [first, second])

        found = await ports.posts.get_many([first.id, second.id, PostId(13)])

        assert found == {first.id: first, second.id: second}
        assert found[first.id].created_at == first.created_at
        assert found[second.id].fan_out is False
        assert await ports.posts.get_many([]) == {}

    async def test_publish_appends_exactly_its_event(self, ports: Adapters) -> None:
        item = post(21)
        await ports.posts.publish(item, published(item))

        collector = Collector()
        assert await ports.outbox.relay(collector, limit=10) == 1
        assert collector.batches == [[published(item)]]
        assert await ports.outbox.relay(collector, limit=10) == 0
        assert collector.batches == [[published(item)]]

    async def test_publish_decides_fan_out_from_the_follower_count_when_asked(self, ports: Adapters) -> None:
        for fan in (BOB, CID):
            await ports.graph.follow(fan, ANA, followed(fan, ANA))
        told = post(21, fan_out=False)

        assert await ports.posts.publish(told, published(told)) == told  # stored as it came
        for number, up_to, fanned in ((22, 2, True), (23, 1, False), (24, 0, False)):
            stored = await ports.posts.publish(post(number), published(post(number)), fan_out_up_to=up_to)
            assert stored == msgspec.structs.replace(post(number), fan_out=fanned), up_to
        lone = post(25, DEE)
        assert await ports.posts.publish(lone, published(lone), fan_out_up_to=0) == lone  # no followers at all

        kept = await ports.posts.get_many(ids_of(21, 22, 23, 24, 25))
        assert [kept[PostId(n)].fan_out for n in (21, 22, 23, 24, 25)] == [False, True, False, False, True]

    async def test_delete_succeeds_once_and_hides_the_post(self, ports: Adapters) -> None:
        kept, gone = post(31), post(32)
        await publish_all(ports, [kept, gone])
        await drain(ports.outbox)

        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([BOB, CID], gone.id, ANA)
            await transaction.commit()

        assert await ports.posts.delete(gone.id, deleted(gone)) == [BOB, CID]  # whose feeds held it
        assert await ports.posts.delete(gone.id, deleted(gone)) is None
        assert await ports.posts.delete(PostId(39), deleted(post(39))) is None

        assert await drain(ports.outbox) == [deleted(gone)]
        assert await ports.posts.get_many([kept.id, gone.id]) == {kept.id: kept}
        assert await ports.posts.latest([ANA], before=None, floor=PostId(0), limit=10) == [kept]
        assert await ports.posts.count_by(ANA) == 1

    async def test_latest_pages_newest_first_across_authors(self, ports: Adapters) -> None:
        authors = [ANA, BOB, CID]
        posts = [post(number, authors[number % 3]) for number in range(1, 13)]
        await publish_all(ports, posts)
        gone = posts[6]  # post 7, by bob
        await ports.posts.delete(gone.id, deleted(gone))

        def expected(among: set[UserId], before: int | None, floor: int, limit: int) -> list[int]:
            return [
                int(item.id)
                for item in reversed(posts)
                if item.author_id in among
                and item is not gone
                and floor <= item.id
                and (before is None or item.id < before)
            ][:limit]

        cases = [
            ({ANA, BOB}, None, 0, 100),
            ({ANA, BOB}, 10, 3, 3),
            ({ANA, BOB}, 10, 3, 100),
            ({BOB}, 8, 7, 10),
            ({ANA, BOB, CID}, 12, 12, 10),
            ({ANA, BOB, CID}, 5, 0, 2),
            ({CID, DEE}, None, 6, 10),
            ({DEE}, None, 0, 10),
        ]
        for among, before, floor, limit in cases:
            found = await ports.posts.latest(
                sorted(among),
                before=None if before is None else PostId(before),
                floor=PostId(floor),
                limit=limit,
            )
            assert ids(found) == expected(among, before, floor, limit), (among, before, floor, limit)
            assert found == [item for item in reversed(posts) if item.id in set(ids(found))]
        assert await ports.posts.latest([], before=None, floor=PostId(0), limit=10) == []
        assert await ports.posts.latest([ANA, BOB], before=None, floor=PostId(0), limit=0) == []

    async def test_latest_unfanned_only_keeps_posts_not_fanned_out(self, ports: Adapters) -> None:
        posts = [
            post(1, ANA),
            post(2, ANA, fan_out=False),
            post(3, BOB, fan_out=False),
            post(4, ANA),
            post(5, BOB, fan_out=False),
            post(6, ANA, fan_out=False),
            post(7, CID, fan_out=False),
        ]
        await publish_all(ports, posts)
        await ports.posts.delete(posts[4].id, deleted(posts[4]))

        everything = await ports.posts.latest([ANA, BOB], before=None, floor=PostId(0), limit=10)
        unfanned = await ports.posts.latest([ANA, BOB], before=None, floor=PostId(0), limit=10, unfanned_only=True)
        paged = await ports.posts.latest([ANA, BOB], before=PostId(6), floor=PostId(3), limit=10, unfanned_only=True)

        assert ids(everything) == [6, 4, 3, 2, 1]
        assert ids(unfanned) == [6, 3, 2]
        assert ids(paged) == [3]

    async def test_count_by_counts_non_deleted_posts(self, ports: Adapters) -> None:
        posts = [post(1, ANA), post(2, ANA), post(3, BOB), post(4, ANA, fan_out=False)]
        await publish_all(ports, posts)
        assert [await ports.posts.count_by(user) for user in (ANA, BOB, CID)] == [3, 1, 0]

        await ports.posts.delete(posts[0].id, deleted(posts[0]))
        await ports.posts.delete(posts[0].id, deleted(posts[0]))
        await ports.posts.delete(posts[2].id, deleted(posts[2]))

        assert [await ports.posts.count_by(user) for user in (ANA, BOB, CID)] == [2, 0, 0]

    async def test_celebrities_are_authors_of_live_unfanned_posts(self, ports: Adapters) -> None:
        assert await ports.posts.celebrities() == frozenset()
        posts = [
            post(1, ANA, fan_out=False),
            post(2, ANA, fan_out=False),
            post(3, BOB, fan_out=False),
            post(4, CID),
            post(5, DEE, fan_out=False),
            post(6, DEE),
        ]
        await publish_all(ports, posts)
        assert await ports.posts.celebrities() == frozenset({ANA, BOB, DEE})

        for gone in (posts[0], posts[2], posts[4]):
            assert await ports.posts.delete(gone.id, deleted(gone)) is not None

        assert await ports.posts.celebrities() == frozenset({ANA})

    async def test_ids_beyond_a_double_round_trip_exactly(self, ports: Adapters) -> None:
        numbers = [2**53 + 1, 2**53 + 2, 2**62 + 3, MAX_POST_ID]
        posts = [post(number) for number in numbers]
        await publish_all(ports, posts)

        found = await ports.posts.get_many([PostId(number) for number in numbers])
        assert sorted(found) == numbers
        assert [found[item.id] for item in posts] == posts
        assert await ports.posts.get_many([PostId(2**53)]) == {}

        newest = await ports.posts.latest([ANA], before=None, floor=PostId(2**53 + 1), limit=10)
        assert ids(newest) == numbers[::-1]
        below_max = await ports.posts.latest([ANA], before=PostId(MAX_POST_ID), floor=PostId(2**53 + 2), limit=10)
        assert ids(below_max) == [2**62 + 3, 2**53 + 2]

        events = await drain(ports.outbox)
        assert [event.post_id for event in events if isinstance(event, PostPublished)] == numbers


# --- PostStore with Idempotency-Keys ------------------------------------------------------------


def claim(key: str, fingerprint: str) -> IdempotencyClaim:
    return IdempotencyClaim(key=key, fingerprint=fingerprint)


class TestIdempotencyKeys:
    async def test_a_claimed_publish_stores_once_and_then_answers_with_the_record(self, ports: Adapters) -> None:
        first, second = post(2**53 + 7), post(2**53 + 8)
        assert await ports.posts.publish(first, published(first), claim=claim("key-1", "fingerprint-a")) == first

        again = await ports.posts.publish(second, published(second), claim=claim("key-1", "fingerprint-b"))

        assert again == IdempotencyRecord(fingerprint="fingerprint-a", post=first)
        assert await ports.posts.get_many([first.id, second.id]) == {first.id: first}
        assert await ports.posts.count_by(ANA) == 1
        assert await drain(ports.outbox) == [published(first)]

    async def test_keys_are_scoped_per_author(self, ports: Adapters) -> None:
        by_ana, by_bob, other_key = post(41), post(42, BOB), post(43)

        for item, key in ((by_ana, "key-1"), (by_bob, "key-1"), (other_key, "key-2")):
            assert await ports.posts.publish(item, published(item), claim=claim(key, "same")) == item

        assert await ports.posts.count_by(ANA) == 2
        assert await ports.posts.count_by(BOB) == 1

    async def test_the_record_outlives_the_post_s_deletion(self, ports: Adapters) -> None:
        first, second = post(41), post(42)
        assert await ports.posts.publish(first, published(first), claim=claim("key-1", "fingerprint-a")) == first
        assert await ports.posts.delete(first.id, deleted(first)) == []

        again = await ports.posts.publish(second, published(second), claim=claim("key-1", "fingerprint-a"))

        assert again == IdempotencyRecord(fingerprint="fingerprint-a", post=first)
        assert await ports.posts.count_by(ANA) == 0


class TestPostgresIdempotencyKeys:
    """What only a shared database has: requests that overlap, and keys kept by the database's clock."""

    async def test_a_repeat_while_the_first_holds_the_key_stores_nothing(self, migrated_database: str) -> None:
        first, repeat = post(41), post(42)
        async with postgres_ports(migrated_database) as (ports, pool), pool.connection() as holder:
            async with holder.transaction():  # the first request, between its lock and its commit
                await holder.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s || ' ' || %s, 0))", (ANA, "key-1")
                )
                in_flight = await ports.posts.publish(repeat, published(repeat), claim=claim("key-1", "fp"))
            assert await ports.posts.publish(first, published(first), claim=claim("key-1", "fp")) == first

            assert in_flight == IdempotencyRecord(fingerprint="fp", post=None)
            assert await ports.posts.get_many([first.id, repeat.id]) == {first.id: first}
            assert await drain(ports.outbox) == [published(first)]

    async def test_an_expired_key_is_taken_over(self, migrated_database: str) -> None:
        first, later = post(41), post(42)
        async with postgres_ports(migrated_database) as (ports, pool):
            assert await ports.posts.publish(first, published(first), claim=claim("key-1", "fp-a")) == first
            async with pool.connection() as connection:
                await connection.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")

            assert await ports.posts.publish(later, published(later), claim=claim("key-1", "fp-b")) == later
            again = await ports.posts.publish(post(43), published(post(43)), claim=claim("key-1", "fp-c"))

            assert again == IdempotencyRecord(fingerprint="fp-b", post=later)
            assert await ports.posts.count_by(ANA) == 2


# --- SocialGraph ---------------------------------------------------------------------------------


class TestSocialGraph:
    async def test_follow_and_unfollow_report_and_record_only_changes(self, ports: Adapters) -> None:
        assert await ports.graph.follow(ANA, BOB, followed(ANA, BOB)) is True
        assert await ports.graph.follow(ANA, BOB, followed(ANA, BOB, "-again")) is False
        assert await ports.graph.unfollow(ANA, CID, unfollowed(ANA, CID)) is False
        assert await ports.graph.unfollow(ANA, BOB, unfollowed(ANA, BOB)) is True
        assert await ports.graph.unfollow(ANA, BOB, unfollowed(ANA, BOB, "-again")) is False
        assert await ports.graph.follow(ANA, BOB, followed(ANA, BOB, "-back")) is True

        assert await drain(ports.outbox) == [
            followed(ANA, BOB),
            unfollowed(ANA, BOB),
            followed(ANA, BOB, "-back"),
        ]
        assert await ports.graph.is_following(ANA, BOB) is True
        assert await ports.graph.is_following(BOB, ANA) is False
        assert await ports.graph.is_following(ANA, CID) is False

    async def test_counts_stay_exact(self, ports: Adapters) -> None:
        assert await ports.graph.counts(ANA) == FollowCounts(followers=0, following=0)
        for follower, followee in [(ANA, BOB), (ANA, CID), (BOB, CID), (DEE, CID), (CID, ANA)]:
            await ports.graph.follow(follower, followee, followed(follower, followee))
        await ports.graph.follow(ANA, BOB, followed(ANA, BOB, "-again"))
        await ports.graph.unfollow(DEE, CID, unfollowed(DEE, CID))
        await ports.graph.unfollow(DEE, CID, unfollowed(DEE, CID, "-again"))
        await ports.graph.unfollow(BOB, ANA, unfollowed(BOB, ANA))

        assert await ports.graph.counts(ANA) == FollowCounts(followers=1, following=2)
        assert await ports.graph.counts(BOB) == FollowCounts(followers=1, following=1)
        assert await ports.graph.counts(CID) == FollowCounts(followers=2, following=1)
        assert await ports.graph.counts(DEE) == FollowCounts(followers=0, following=0)
        assert await ports.graph.counts(UserId("nobody")) == FollowCounts(followers=0, following=0)

    async def test_pages_ascend_in_code_point_order(self, ports: Adapters) -> None:
        others = [UserId(raw) for raw in ("B", "a", "_", "9", "ana.b", "Z-z", "a0", "-")]
        in_order = sorted(others)  # Python compares strings by code point
        assert in_order == ["-", "9", "B", "Z-z", "_", "a", "a0", "ana.b"]
        star = UserId("star")
        for other in others:
            await ports.graph.follow(other, star, followed(other, star))
            await ports.graph.follow(star, other, followed(star, other))

        assert await ports.graph.followers(star, after=None, limit=100) == in_order
        assert await ports.graph.following(star, after=None, limit=100) == in_order

        for read in (ports.graph.followers, ports.graph.following):
            pages: list[list[UserId]] = []
            after: UserId | None = None
            while page := await read(star, after=after, limit=3):
                pages.append(page)
                after = page[-1]
            assert pages == [in_order[0:3], in_order[3:6], in_order[6:8]]
            assert await read(star, after=UserId("a"), limit=100) == ["a0", "ana.b"]
            assert await read(star, after=UserId("C"), limit=2) == ["Z-z", "_"]
            assert await read(star, after=UserId("ana.b"), limit=100) == []
        assert await ports.graph.followers(UserId("B"), after=None, limit=10) == [star]
        assert await ports.graph.following(UserId("nobody"), after=None, limit=10) == []

    async def test_followed_among_picks_current_followees(self, ports: Adapters) -> None:
        for followee in (BOB, CID, DEE):
            await ports.graph.follow(ANA, followee, followed(ANA, followee))
        await ports.graph.unfollow(ANA, DEE, unfollowed(ANA, DEE))
        await ports.graph.follow(BOB, ANA, followed(BOB, ANA))

        assert await ports.graph.followed_among(ANA, [BOB, DEE, UserId("eve"), ANA]) == {BOB}
        assert await ports.graph.followed_among(ANA, {CID, BOB}) == {BOB, CID}
        assert await ports.graph.followed_among(ANA, []) == set()
        assert await ports.graph.followed_among(CID, [ANA, BOB]) == set()


# --- FeedStore and FeedUnitOfWork ----------------------------------------------------------------


class Boom(Exception):
    """Raised inside a transaction to abandon it."""


class TestFeedStore:
    async def test_add_is_idempotent_across_users(self, ports: Adapters) -> None:
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, BOB], PostId(5), CID)
            await transaction.feeds.add([ANA, BOB, DEE], PostId(5), CID)
            await transaction.feeds.add([ANA], PostId(7), CID)
            await transaction.commit()
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, BOB], PostId(5), CID)
            await transaction.feeds.add([], PostId(9), CID)
            await transaction.commit()

        entries = {
            user: await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10)
            for user in (ANA, BOB, DEE, CID)
        }
        assert entries == {ANA: [7, 5], BOB: [5], DEE: [5], CID: []}

    async def test_add_to_audience_pages_the_followers_and_adds_the_author_first(self, ports: Adapters) -> None:
        star = UserId("star")
        fans = [UserId(raw) for raw in ("B", "a", "_", "9", "Z-z", "a0", "-")]
        for fan in [*fans, ANA]:
            await ports.graph.follow(fan, star, followed(fan, star))
        await ports.graph.unfollow(ANA, star, unfollowed(ANA, star))
        await ports.graph.follow(star, BOB, followed(star, BOB))  # whom the star follows is no audience
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([fans[0]], PostId(5), star)  # already there: stays once
            pages: list[list[UserId]] = []
            after: UserId | None = None
            while page := await transaction.feeds.add_to_audience(star, PostId(5), after=after, limit=3):
                pages.append(page)
                after = page[-1]
            assert await transaction.feeds.add_to_audience(star, PostId(6), after=UserId("a"), limit=9) == ["a0"]
            assert await transaction.feeds.add_to_audience(DEE, PostId(8), after=None, limit=3) == []  # no followers
            await transaction.commit()

        in_order = sorted(fans)
        assert pages == [in_order[0:3], in_order[3:6], in_order[6:]]
        for fan in fans:
            expected = [6, 5] if fan == "a0" else [5]
            assert await ports.feeds.entries(fan, before=None, floor=PostId(0), limit=10) == expected, fan
        # The author's own feed comes with the first chunk only.
        assert await ports.feeds.entries(star, before=None, floor=PostId(0), limit=10) == [5]
        assert await ports.feeds.entries(DEE, before=None, floor=PostId(0), limit=10) == [8]
        for outsider in (ANA, BOB):
            assert await ports.feeds.entries(outsider, before=None, floor=PostId(0), limit=10) == []

    async def test_add_to_audiences_writes_the_first_chunk_of_many_posts_at_once(self, ports: Adapters) -> None:
        star, quiet = UserId("star"), UserId("quiet")
        fans = [UserId(f"fan-{n}") for n in range(4)]
        for fan in fans:
            await ports.graph.follow(fan, star, followed(fan, star))
        await ports.graph.follow(ANA, BOB, followed(ANA, BOB))
        async with ports.unit_of_work.begin() as transaction:
            written = await transaction.feeds.add_to_audiences(
                [(PostId(5), star), (PostId(6), BOB), (PostId(7), quiet)], limit=3
            )
            await transaction.commit()

        assert written == {PostId(5): fans[:3], PostId(6): [ANA], PostId(7): []}
        for user, expected in [(star, [5]), (BOB, [6]), (quiet, [7]), (ANA, [6]), *((fan, [5]) for fan in fans[:3])]:
            assert await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10) == expected, user
        assert await ports.feeds.entries(fans[3], before=None, floor=PostId(0), limit=10) == []  # the next chunk's

    async def test_entries_page_newest_first(self, ports: Adapters) -> None:
        numbers = [3, 2**53 + 1, 9, 1, 15, 12, 2**53, 6]
        async with ports.unit_of_work.begin() as transaction:
            for number in numbers:
                await transaction.feeds.add([ANA], PostId(number), BOB)
            await transaction.feeds.add([CID], PostId(4), BOB)
            await transaction.commit()
        newest_first = sorted(numbers, reverse=True)

        cases = [(None, 0, 100), (None, 0, 3), (12, 0, 100), (12, 3, 2), (15, 12, 10), (9, 9, 10), (1, 0, 10)]
        for before, floor, limit in cases:
            found = await ports.feeds.entries(
                ANA, before=None if before is None else PostId(before), floor=PostId(floor), limit=limit
            )
            expected = [n for n in newest_first if floor <= n and (before is None or n < before)][:limit]
            assert found == expected, (before, floor, limit)
        assert await ports.feeds.entries(ANA, before=PostId(2**53 + 1), floor=PostId(2**53), limit=5) == [2**53]
        assert await ports.feeds.entries(DEE, before=None, floor=PostId(0), limit=10) == []

    async def test_remove_post_reports_the_feeds_that_held_it(self, ports: Adapters) -> None:
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, BOB, DEE], PostId(5), CID)
            await transaction.feeds.add([ANA], PostId(6), CID)
            await transaction.commit()

        async with ports.unit_of_work.begin() as transaction:
            holders = await transaction.feeds.remove_post(PostId(5))
            await transaction.commit()
        async with ports.unit_of_work.begin() as transaction:
            again = await transaction.feeds.remove_post(PostId(5))
            never = await transaction.feeds.remove_post(PostId(99))
            await transaction.commit()

        assert sorted(holders) == [ANA, BOB, DEE]
        assert again == []
        assert never == []
        assert await ports.feeds.entries(ANA, before=None, floor=PostId(0), limit=10) == [6]
        assert await ports.feeds.entries(BOB, before=None, floor=PostId(0), limit=10) == []

    async def test_backfill_adds_posts_and_only_raises_the_horizon(self, ports: Adapters) -> None:
        assert await ports.feeds.horizon(ANA) == 0
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA], PostId(30), BOB)
            await transaction.feeds.backfill(ANA, [post(10, BOB), post(20, CID), post(30, BOB)], horizon=PostId(10))
            await transaction.commit()
        assert await ports.feeds.entries(ANA, before=None, floor=PostId(0), limit=10) == [30, 20, 10]
        assert await ports.feeds.horizon(ANA) == 10

        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.backfill(ANA, [post(5, CID)], horizon=PostId(5))
            await transaction.commit()
        assert await ports.feeds.entries(ANA, before=None, floor=PostId(0), limit=10) == [30, 20, 10, 5]
        assert await ports.feeds.horizon(ANA) == 10

        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.backfill(ANA, [], horizon=PostId(2**53 + 1))
            await transaction.commit()
        assert await ports.feeds.horizon(ANA) == 2**53 + 1
        assert await ports.feeds.horizon(BOB) == 0

        # Backfilled entries belong to their authors like added ones: removal and purge find them.
        async with ports.unit_of_work.begin() as transaction:
            assert await transaction.feeds.remove_post(PostId(20)) == [ANA]
            await transaction.feeds.purge_author(ANA, BOB)
            await transaction.commit()
        assert await ports.feeds.entries(ANA, before=None, floor=PostId(0), limit=10) == [5]

    async def test_purge_author_touches_one_author_in_one_feed(self, ports: Adapters) -> None:
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, DEE], PostId(1), BOB)
            await transaction.feeds.add([ANA, DEE], PostId(2), CID)
            await transaction.feeds.add([ANA, DEE], PostId(3), BOB)
            await transaction.feeds.add([ANA], PostId(4), CID)
            await transaction.commit()

        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.purge_author(ANA, BOB)
            await transaction.feeds.purge_author(CID, BOB)
            await transaction.commit()

        assert await ports.feeds.entries(ANA, before=None, floor=PostId(0), limit=10) == [4, 2]
        assert await ports.feeds.entries(DEE, before=None, floor=PostId(0), limit=10) == [3, 2, 1]
        async with ports.unit_of_work.begin() as transaction:
            assert await transaction.feeds.remove_post(PostId(3)) == [DEE]
            await transaction.commit()

    async def test_leaving_without_commit_discards_every_write(self, ports: Adapters) -> None:
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, BOB], PostId(1), CID)
            await transaction.feeds.add([ANA], PostId(2), DEE)
            await transaction.feeds.backfill(ANA, [post(3, CID)], horizon=PostId(3))
            await transaction.ledger.mark("feeds", ["event-1"])
            await transaction.commit()

        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, CID], PostId(10), BOB)
            assert sorted(await transaction.feeds.remove_post(PostId(1))) == [ANA, BOB]
            await transaction.feeds.backfill(ANA, [post(4, CID)], horizon=PostId(50))
            await transaction.feeds.backfill(BOB, [post(5, CID)], horizon=PostId(5))
            await transaction.feeds.purge_author(ANA, DEE)
            await transaction.ledger.mark("feeds", ["event-2"])

        await self.assert_untouched(ports)

    async def test_an_exception_inside_rolls_back(self, ports: Adapters) -> None:
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, BOB], PostId(1), CID)
            await transaction.feeds.add([ANA], PostId(2), DEE)
            await transaction.feeds.backfill(ANA, [post(3, CID)], horizon=PostId(3))
            await transaction.ledger.mark("feeds", ["event-1"])
            await transaction.commit()

        async def fail_midway() -> None:
            async with ports.unit_of_work.begin() as transaction:
                await transaction.feeds.add([ANA, CID], PostId(10), BOB)
                await transaction.feeds.remove_post(PostId(1))
                await transaction.feeds.backfill(ANA, [post(4, CID)], horizon=PostId(50))
                await transaction.feeds.purge_author(ANA, DEE)
                await transaction.ledger.mark("feeds", ["event-2"])
                raise Boom

        with pytest.raises(Boom):
            await fail_midway()

        await self.assert_untouched(ports)
        # The unit of work stays usable after the failure.
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([CID], PostId(11), BOB)
            await transaction.ledger.mark("feeds", ["event-3"])
            await transaction.commit()
        assert await ports.feeds.entries(CID, before=None, floor=PostId(0), limit=10) == [11]
        assert await ports.ledger.applied("feeds", ["event-3"]) == {"event-3"}

    @staticmethod
    async def assert_untouched(ports: Adapters) -> None:
        """The state the first, committed transaction of the two tests above leaves."""
        feeds = {
            user: await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10) for user in (ANA, BOB, CID)
        }
        assert feeds == {ANA: [3, 2, 1], BOB: [1], CID: []}
        assert [await ports.feeds.horizon(user) for user in (ANA, BOB)] == [3, 0]
        assert await ports.ledger.applied("feeds", ["event-1"]) == {"event-1"}
        assert await ports.ledger.applied("feeds", ["event-2"]) == set()


# --- IdempotencyLedger ---------------------------------------------------------------------------


class TestIdempotencyLedger:
    async def test_marks_are_per_consumer(self, ports: Adapters) -> None:
        assert await ports.ledger.applied("feeds", ["event-1"]) == set()

        await ports.ledger.mark("feeds", ["event-1"])
        await ports.ledger.mark("feeds", ["event-1"])

        assert await ports.ledger.applied("feeds", ["event-1"]) == {"event-1"}
        assert await ports.ledger.applied("feeds", ["event-2"]) == set()
        assert await ports.ledger.applied("search", ["event-1"]) == set()

    async def test_marks_and_lookups_take_many_ids_at_once(self, ports: Adapters) -> None:
        await ports.ledger.mark("feeds", ["event-1", "event-2", "event-2"])
        await ports.ledger.mark("feeds", [])

        assert await ports.ledger.applied("feeds", ["event-0", "event-1", "event-2", "event-3"]) == {
            "event-1",
            "event-2",
        }
        assert await ports.ledger.applied("feeds", []) == set()

    async def test_a_committed_transaction_marks_the_ledger(self, ports: Adapters) -> None:
        async with ports.unit_of_work.begin() as transaction:
            assert await transaction.ledger.applied("feeds", ["event-1"]) == set()
            await transaction.ledger.mark("feeds", ["event-1"])
            await transaction.ledger.mark("feeds", ["event-1"])
            await transaction.commit()
        async with ports.unit_of_work.begin() as transaction:
            assert await transaction.ledger.applied("feeds", ["event-1"]) == {"event-1"}
            assert await transaction.ledger.applied("search", ["event-1"]) == set()

        assert await ports.ledger.applied("feeds", ["event-1"]) == {"event-1"}
        assert await ports.ledger.applied("search", ["event-1"]) == set()


# --- Outbox --------------------------------------------------------------------------------------


class TestOutbox:
    async def test_events_come_out_oldest_first(self, ports: Adapters) -> None:
        first, second = post(2, BOB), post(1, ANA)
        await ports.posts.publish(first, published(first))
        await ports.graph.follow(ANA, BOB, followed(ANA, BOB))
        await ports.posts.publish(second, published(second))
        await ports.posts.delete(first.id, deleted(first))
        await ports.graph.unfollow(ANA, BOB, unfollowed(ANA, BOB))
        appended: list[Event] = [
            published(first),
            followed(ANA, BOB),
            published(second),
            deleted(first),
            unfollowed(ANA, BOB),
        ]

        collector = Collector()
        assert await ports.outbox.relay(collector, limit=2) == 2
        assert await ports.outbox.relay(collector, limit=2) == 2
        assert await ports.outbox.relay(collector, limit=2) == 1
        assert await ports.outbox.relay(collector, limit=2) == 0

        assert collector.batches == [appended[0:2], appended[2:4], appended[4:5]]

    async def test_the_backlog_counts_what_waits_up_to_a_limit(self, ports: Adapters) -> None:
        await publish_all(ports, [post(number) for number in (1, 2, 3)])

        assert await ports.outbox.backlog() == 3
        assert await ports.outbox.backlog(at_most=2) == 2
        assert await ports.outbox.relay(Collector(), limit=1) == 1
        assert await ports.outbox.backlog(at_most=10) == 2

    async def test_a_failed_publish_leaves_the_events(self, ports: Adapters) -> None:
        posts = [post(number) for number in (1, 2, 3)]
        await publish_all(ports, posts)

        with pytest.raises(BusDown):
            await ports.outbox.relay(failing_publish, limit=2)
        with pytest.raises(BusDown):
            await ports.outbox.relay(failing_publish, limit=10)

        assert await drain(ports.outbox) == [published(item) for item in posts]

    async def test_concurrent_relays_hand_out_disjoint_batches(self, ports: Adapters) -> None:
        posts = [post(number) for number in range(1, 6)]
        await publish_all(ports, posts)
        entered, release = asyncio.Event(), asyncio.Event()
        held: list[Event] = []

        async def blocked_publish(events: Sequence[Event]) -> None:
            held.extend(events)
            entered.set()
            await release.wait()

        first = asyncio.create_task(ports.outbox.relay(blocked_publish, limit=2))
        try:
            async with asyncio.timeout(WAIT):
                await entered.wait()
            second = Collector()
            async with asyncio.timeout(WAIT):
                assert await ports.outbox.relay(second, limit=2) == 2
        finally:
            release.set()
        async with asyncio.timeout(WAIT):
            assert await first == 2

        assert held == [published(posts[0]), published(posts[1])]
        assert second.events == [published(posts[2]), published(posts[3])]
        assert await drain(ports.outbox) == [published(posts[4])]

    async def test_a_blocked_relay_that_fails_hands_its_batch_out_again(self, ports: Adapters) -> None:
        posts = [post(number) for number in range(1, 4)]
        await publish_all(ports, posts)
        entered, release = asyncio.Event(), asyncio.Event()

        async def blocked_then_failing(events: Sequence[Event]) -> None:
            entered.set()
            await release.wait()
            raise BusDown(f"{len(events)} events not published")

        first = asyncio.create_task(ports.outbox.relay(blocked_then_failing, limit=2))
        try:
            async with asyncio.timeout(WAIT):
                await entered.wait()
            async with asyncio.timeout(WAIT):
                during = await drain(ports.outbox)
        finally:
            release.set()
        with pytest.raises(BusDown):
            await first

        assert during == [published(posts[2])]
        assert await drain(ports.outbox) == [published(posts[0]), published(posts[1])]
