"""SocialGraph: follow edges, their counts and their events."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from feedcore.errors import FollowBlocked
from feedcore.model import UserId
from feedcore.ports import (
    FollowCounts,
)
from tests.integration.contracts.blocks import (
    ANA,
    BOB,
    CID,
    DEE,
    drain,
    followed,
    muted,
    unfollowed,
    unmuted,
)
from tests.support.world import Adapters


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

    async def test_seen_among_picks_current_followees(self, ports: Adapters) -> None:
        for followee in (BOB, CID, DEE):
            await ports.graph.follow(ANA, followee, followed(ANA, followee))
        await ports.graph.unfollow(ANA, DEE, unfollowed(ANA, DEE))
        await ports.graph.follow(BOB, ANA, followed(BOB, ANA))

        assert await ports.graph.seen_among(ANA, [BOB, DEE, UserId("eve"), ANA]) == {BOB}
        assert await ports.graph.seen_among(ANA, {CID, BOB}) == {BOB, CID}
        assert await ports.graph.seen_among(ANA, []) == set()
        assert await ports.graph.seen_among(CID, [ANA, BOB]) == set()

    async def test_mute_and_unmute_report_and_record_only_changes(self, ports: Adapters) -> None:
        assert await ports.graph.mute(ANA, BOB, muted(ANA, BOB)) is True
        assert await ports.graph.mute(ANA, BOB, muted(ANA, BOB, "-again")) is False
        assert await ports.graph.unmute(ANA, CID, unmuted(ANA, CID)) is False
        assert await ports.graph.unmute(ANA, BOB, unmuted(ANA, BOB)) is True
        assert await ports.graph.unmute(ANA, BOB, unmuted(ANA, BOB, "-again")) is False

        assert await drain(ports.outbox) == [muted(ANA, BOB), unmuted(ANA, BOB)]

    async def test_a_muted_author_is_not_seen_and_the_muter_leaves_the_audience(self, ports: Adapters) -> None:
        for follower, followee in [(ANA, BOB), (ANA, CID), (ANA, DEE), (CID, BOB), (DEE, BOB)]:
            await ports.graph.follow(follower, followee, followed(follower, followee))
        await ports.graph.mute(ANA, BOB, muted(ANA, BOB))
        await ports.graph.mute(DEE, BOB, muted(DEE, BOB))
        await ports.graph.mute(ANA, UserId("eve"), muted(ANA, UserId("eve")))  # not followed: no matter

        assert await ports.graph.seen_among(ANA, [BOB, CID, DEE]) == {CID, DEE}
        assert await ports.graph.seen(ANA, after=None, limit=10) == [CID, DEE]
        assert await ports.graph.seen(ANA, after=None, limit=1) == [CID]
        assert await ports.graph.seen(ANA, after=CID, limit=10) == [DEE]
        assert await ports.graph.audience(BOB, after=None, limit=10) == [CID]
        assert await ports.graph.audience(BOB, after=CID, limit=10) == []
        # A mute hides; it unfollows no one and is not counted.
        assert await ports.graph.followers(BOB, after=None, limit=10) == [ANA, CID, DEE]
        assert await ports.graph.counts(BOB) == FollowCounts(followers=3, following=0)

        await ports.graph.unmute(ANA, BOB, unmuted(ANA, BOB))
        assert await ports.graph.seen(ANA, after=None, limit=10) == [BOB, CID, DEE]
        assert await ports.graph.audience(BOB, after=None, limit=1) == [ANA]
        assert await ports.graph.audience(BOB, after=ANA, limit=1) == [CID]

    async def test_a_block_removes_both_follows_and_refuses_new_ones(self, ports: Adapters) -> None:
        for follower, followee in [(ANA, BOB), (BOB, ANA), (ANA, CID), (BOB, CID)]:
            await ports.graph.follow(follower, followee, followed(follower, followee))
        await drain(ports.outbox)
        both = [unfollowed(ANA, BOB, "-block"), unfollowed(BOB, ANA, "-block")]

        assert await ports.graph.block(ANA, BOB, both) == both
        assert await ports.graph.block(ANA, BOB, both) == []
        assert await drain(ports.outbox) == both
        assert await ports.graph.is_following(ANA, BOB) is False
        assert await ports.graph.is_following(BOB, ANA) is False
        assert await ports.graph.counts(ANA) == FollowCounts(followers=0, following=1)
        assert await ports.graph.counts(BOB) == FollowCounts(followers=0, following=1)
        for follower, followee in [(ANA, BOB), (BOB, ANA)]:
            with pytest.raises(FollowBlocked):
                await ports.graph.follow(follower, followee, followed(follower, followee, "-refused"))
        assert await drain(ports.outbox) == []
        assert await ports.graph.counts(CID) == FollowCounts(followers=2, following=0)  # others untouched

        assert await ports.graph.unblock(BOB, ANA) is False  # only the blocker lifts a block
        with pytest.raises(FollowBlocked):
            await ports.graph.follow(BOB, ANA, followed(BOB, ANA, "-refused"))
        assert await ports.graph.unblock(ANA, BOB) is True
        assert await ports.graph.unblock(ANA, BOB) is False
        assert await ports.graph.is_following(ANA, BOB) is False  # nothing comes back
        assert await ports.graph.follow(BOB, ANA, followed(BOB, ANA, "-after")) is True

    async def test_a_block_of_one_follow_removes_that_one(self, ports: Adapters) -> None:
        await ports.graph.follow(BOB, ANA, followed(BOB, ANA))
        await drain(ports.outbox)
        both = [unfollowed(ANA, BOB, "-block"), unfollowed(BOB, ANA, "-block")]

        assert await ports.graph.block(ANA, BOB, both) == [both[1]]
        assert await drain(ports.outbox) == [both[1]]
        assert await ports.graph.counts(ANA) == FollowCounts(followers=0, following=0)
        assert await ports.graph.counts(BOB) == FollowCounts(followers=0, following=0)
        assert await ports.graph.block(BOB, ANA, both) == []  # a block each way: both stand
        assert await ports.graph.unblock(ANA, BOB) is True
        with pytest.raises(FollowBlocked):
            await ports.graph.follow(ANA, BOB, followed(ANA, BOB, "-refused"))

    async def test_no_follow_slips_in_beside_a_concurrent_block(self, ports: Adapters) -> None:
        pairs = [(UserId(f"fan-{n}"), UserId(f"idol-{n}")) for n in range(40)]

        async def follow(fan: UserId, idol: UserId) -> None:
            with contextlib.suppress(FollowBlocked):
                await ports.graph.follow(fan, idol, followed(fan, idol))

        async def block(fan: UserId, idol: UserId) -> None:
            await ports.graph.block(idol, fan, [unfollowed(fan, idol, "-block"), unfollowed(idol, fan, "-block")])

        await asyncio.gather(*(task for fan, idol in pairs for task in (follow(fan, idol), block(fan, idol))))

        for fan, idol in pairs:
            assert await ports.graph.is_following(fan, idol) is False, fan
            assert await ports.graph.counts(idol) == FollowCounts(followers=0, following=0), idol
