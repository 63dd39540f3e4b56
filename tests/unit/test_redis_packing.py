"""Commands packed by hiredis are the bytes redis-py's own Python packing sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Connection

from feedcore.adapters.redis import HiredisPackedConnection

arguments = st.lists(
    st.one_of(
        st.text(),
        st.binary(),
        st.integers(min_value=-(2**63), max_value=2**64),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=30,
)
names = st.sampled_from(["SMISMEMBER", "MGET", "EVALSHA", "SET", "CLIENT SETNAME"])


@given(names, arguments)
def test_hiredis_packs_every_command_as_redis_py_does(name: str, args: list[str | bytes | int | float]) -> None:
    packed = HiredisPackedConnection().pack_command(name, *args)
    assert b"".join(packed) == b"".join(Connection().pack_command(name, *args))


def test_memoryviews_are_still_sent_as_they_are() -> None:
    body = memoryview(b"x" * 10)
    assert HiredisPackedConnection().pack_command("SET", "k", body)[-2] is body
