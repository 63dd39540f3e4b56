"""FeedStore and FeedUnitOfWork: materialised feeds, written in transactions."""

from __future__ import annotations

import pytest

from feedcore.model import PostId, UserId
from tests.integration.contracts.blocks import (
    ANA,
    BOB,
    CID,
    DEE,
    followed,
    muted,
    post,
    unfollowed,
)
from tests.support.world import Adapters


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
            await transaction.feeds.add([DEE], PostId(4), quiet)  # written before, in the same transaction
            await transaction.feeds.add([fans[1]], PostId(5), star)  # already there (a backfill's): stays once
            written = await transaction.feeds.add_to_audiences(
                [(PostId(5), star), (PostId(6), BOB), (PostId(7), quiet)], limit=3
            )
            await transaction.commit()

        assert written == {PostId(5): fans[:3], PostId(6): [ANA], PostId(7): []}
        assert await ports.feeds.entries(DEE, before=None, floor=PostId(0), limit=10) == [4]
        for user, expected in [(star, [5]), (BOB, [6]), (quiet, [7]), (ANA, [6]), *((fan, [5]) for fan in fans[:3])]:
            assert await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10) == expected, user
        assert await ports.feeds.entries(fans[3], before=None, floor=PostId(0), limit=10) == []  # the next chunk's

    async def test_fan_out_leaves_out_the_followers_who_mute_the_author(self, ports: Adapters) -> None:
        star = UserId("star")
        fans = [UserId(f"fan-{n}") for n in range(5)]
        for fan in fans:
            await ports.graph.follow(fan, star, followed(fan, star))
        for fan in (fans[0], fans[2], fans[3]):
            await ports.graph.mute(fan, star, muted(fan, star))
        await ports.graph.mute(fans[1], ANA, muted(fans[1], ANA))  # another author's mute: no matter
        async with ports.unit_of_work.begin() as transaction:
            written = await transaction.feeds.add_to_audiences([(PostId(5), star)], limit=1)
            rest = await transaction.feeds.add_to_audience(star, PostId(5), after=fans[1], limit=1)
            last = await transaction.feeds.add_to_audience(star, PostId(5), after=fans[4], limit=1)
            await transaction.commit()

        assert (written, rest, last) == ({PostId(5): [fans[1]]}, [fans[4]], [])
        for user in (star, fans[1], fans[4]):
            assert await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10) == [5], user
        for fan in (fans[0], fans[2], fans[3]):
            assert await ports.feeds.entries(fan, before=None, floor=PostId(0), limit=10) == [], fan

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
        await self.commit_first(ports)

        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, CID], PostId(10), BOB)
            assert sorted(await transaction.feeds.remove_post(PostId(1))) == [ANA, BOB]
            await transaction.feeds.backfill(ANA, [post(4, CID)], horizon=PostId(50))
            await transaction.feeds.backfill(BOB, [post(5, CID)], horizon=PostId(5))
            await transaction.feeds.purge_author(ANA, DEE)
            await transaction.ledger.mark("feeds", ["event-2"])

        await self.assert_untouched(ports)

    async def test_an_exception_inside_rolls_back(self, ports: Adapters) -> None:
        await self.commit_first(ports)

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
    async def commit_first(ports: Adapters) -> None:
        """The first transaction of the two tests above, committed."""
        async with ports.unit_of_work.begin() as transaction:
            await transaction.feeds.add([ANA, BOB], PostId(1), CID)
            await transaction.feeds.add([ANA], PostId(2), DEE)
            await transaction.feeds.backfill(ANA, [post(3, CID)], horizon=PostId(3))
            await transaction.ledger.mark("feeds", ["event-1"])
            await transaction.commit()

    @staticmethod
    async def assert_untouched(ports: Adapters) -> None:
        """The state :meth:`commit_first` leaves."""
        feeds = {
            user: await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10) for user in (ANA, BOB, CID)
        }
        assert feeds == {ANA: [3, 2, 1], BOB: [1], CID: []}
        assert [await ports.feeds.horizon(user) for user in (ANA, BOB)] == [3, 0]
        assert await ports.ledger.applied("feeds", ["event-1"]) == {"event-1"}
        assert await ports.ledger.applied("feeds", ["event-2"]) == set()
