"""PostStore with Idempotency-Keys: replays, other fingerprints, keys in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from feedcore.adapters.postgres import PostgresPostStore
from feedcore.model import Post
from feedcore.ports import (
    IdempotencyClaim,
    IdempotencyRecord,
)
from tests.integration.contracts.blocks import (
    ANA,
    BOB,
    deleted,
    drain,
    post,
    postgres_ports,
    published,
)
from tests.support.world import Adapters


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

    async def test_publishes_at_once_each_get_their_own_answer(self, ports: Adapters) -> None:
        # PostgreSQL writes publishes that wait together in one statement; each answer is its own.
        kept = post(40)
        assert await ports.posts.publish(kept, published(kept), claim=claim("kept", "fp-kept")) == kept
        plain = [post(n) for n in range(41, 46)]
        keyed = [post(n, BOB) for n in range(51, 54)]
        twins = [post(61), post(62)]  # one key, sent twice at once
        replay, other = post(70), post(71)
        requests = [
            *(ports.posts.publish(item, published(item), fan_out_up_to=10) for item in plain),
            *(ports.posts.publish(item, published(item), claim=claim(f"k{item.id}", "fp")) for item in keyed),
            *(ports.posts.publish(item, published(item), claim=claim("twin", "fp-twin")) for item in twins),
            ports.posts.publish(replay, published(replay), claim=claim("kept", "fp-kept")),
            ports.posts.publish(other, published(other), claim=claim("kept", "fp-other")),
        ]

        answers = await asyncio.gather(*requests)

        assert answers[:8] == [*plain, *keyed]
        first_twin, second_twin = answers[8:10]
        assert first_twin == twins[0]
        assert second_twin in (
            IdempotencyRecord(fingerprint="fp-twin", post=twins[0]),
            IdempotencyRecord(fingerprint="fp-twin", post=None),  # still in flight when it came
        )
        assert answers[10:] == [
            IdempotencyRecord(fingerprint="fp-kept", post=kept),
            IdempotencyRecord(fingerprint="fp-kept", post=kept),
        ]
        stored = [kept, *plain, *keyed, twins[0]]
        everything = [*stored, twins[1], replay, other]
        assert await ports.posts.get_many([item.id for item in everything]) == {item.id: item for item in stored}
        assert await ports.posts.count_by(ANA) == 7
        assert await ports.posts.count_by(BOB) == 3
        assert sorted(await drain(ports.outbox), key=lambda event: event.event_id) == sorted(
            (published(item) for item in stored), key=lambda event: event.event_id
        )


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

    async def test_a_row_the_database_refuses_fails_its_own_request_only(self, migrated_database: str) -> None:
        good = [post(n) for n in range(41, 45)]
        bad = Post(id=post(45).id, author_id=ANA, content="a NUL \x00 byte", created_at=post(45).created_at)
        async with postgres_ports(migrated_database) as (ports, _):
            answers = await asyncio.gather(
                *(ports.posts.publish(item, published(item)) for item in [*good[:2], bad, *good[2:]]),
                return_exceptions=True,
            )

            assert answers[:2] + answers[3:] == good
            assert isinstance(answers[2], Exception)
            assert await ports.posts.count_by(ANA) == 4
            assert sorted(await drain(ports.outbox), key=lambda event: event.event_id) == [published(p) for p in good]
            with pytest.raises(type(answers[2])):
                await ports.posts.publish(bad, published(bad))

    async def test_publishes_at_once_share_one_statement(
        self, migrated_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        alone: list[Post] = []
        one_at_a_time = PostgresPostStore._publish_one

        async def publish_one(store: PostgresPostStore, item: Any) -> Any:
            alone.append(item.post)
            return await one_at_a_time(store, item)

        monkeypatch.setattr(PostgresPostStore, "_publish_one", publish_one)
        plain, keyed = [post(n) for n in range(41, 45)], [post(n, BOB) for n in range(51, 54)]
        async with postgres_ports(migrated_database) as (ports, _):
            answers = await asyncio.gather(
                *(ports.posts.publish(item, published(item)) for item in plain),
                *(ports.posts.publish(item, published(item), claim=claim(f"k{item.id}", "fp")) for item in keyed),
            )

            stored = [*plain, *keyed]
            assert answers == stored
            assert alone == []
            assert await ports.posts.get_many([item.id for item in stored]) == {item.id: item for item in stored}
