"""IdempotencyLedger: which events each consumer applied."""

from __future__ import annotations

from tests.support.world import Adapters


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
