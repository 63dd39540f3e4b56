"""PostStore: posts, their outbox events, deletions, timelines."""

from __future__ import annotations

import msgspec

from feedcore.events import PostPublished
from feedcore.model import MAX_POST_ID, PostId, UserId
from tests.integration.contracts.blocks import (
    ANA,
    BOB,
    CID,
    DEE,
    Collector,
    deleted,
    drain,
    followed,
    ids,
    ids_of,
    post,
    publish_all,
    published,
)
from tests.support.world import Adapters


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

    async def test_authors_of_names_the_authors_of_live_posts_only(self, ports: Adapters) -> None:
        by_ana, by_bob, gone = post(51), post(52, BOB), post(53)
        await publish_all(ports, [by_ana, by_bob, gone])
        assert await ports.posts.delete(gone.id, deleted(gone)) is not None

        assert await ports.posts.authors_of(ids_of(51, 52, 53, 59)) == {by_ana.id: ANA, by_bob.id: BOB}
        assert await ports.posts.authors_of([]) == {}

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
