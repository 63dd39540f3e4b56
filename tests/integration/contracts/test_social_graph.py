"""SocialGraph: follow edges, their counts and their events."""

from __future__ import annotations

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
    unfollowed,
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

    async def test_followed_among_picks_current_followees(self, ports: Adapters) -> None:
        for followee in (BOB, CID, DEE):
            await ports.graph.follow(ANA, followee, followed(ANA, followee))
        await ports.graph.unfollow(ANA, DEE, unfollowed(ANA, DEE))
        await ports.graph.follow(BOB, ANA, followed(BOB, ANA))

        assert await ports.graph.followed_among(ANA, [BOB, DEE, UserId("eve"), ANA]) == {BOB}
        assert await ports.graph.followed_among(ANA, {CID, BOB}) == {BOB, CID}
        assert await ports.graph.followed_among(ANA, []) == set()
        assert await ports.graph.followed_among(CID, [ANA, BOB]) == set()
