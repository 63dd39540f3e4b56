from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedcore import (
    InvalidCursor,
    InvalidPostId,
    InvalidUserId,
    Page,
    PostId,
    PostNotFound,
    SnowflakeIdGenerator,
    parse_post_id,
    parse_user_id,
)
from feedcore.adapters.memory import ManualClock
from feedcore.errors import InvalidContent
from feedcore.ids import MAX_NODE, timestamp_of
from feedcore.model import (
    MAX_POST_ID,
    decode_post_cursor,
    decode_user_cursor,
    encode_post_cursor,
    encode_user_cursor,
    from_sortable_key,
    sortable_key,
    validate_content,
)

post_ids = st.integers(min_value=1, max_value=MAX_POST_ID).map(PostId)


@pytest.mark.parametrize("raw", ["a", "A_b.c-9", "x" * 64])
def test_valid_user_ids_parse(raw: str) -> None:
    assert parse_user_id(raw) == raw


@pytest.mark.parametrize("raw", ["", "x" * 65, "a b", "é", "a/b", "a\n"])
def test_invalid_user_ids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUserId):
        parse_user_id(raw)


@pytest.mark.parametrize("raw", ["0", "-1", "01", "1.0", "", "abc", "9" * 20])
def test_invalid_post_ids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPostId):
        parse_post_id(raw)


def test_well_formed_post_ids_beyond_any_id_made_are_not_found() -> None:
    with pytest.raises(PostNotFound):
        parse_post_id(str(MAX_POST_ID + 1))


@given(post_ids)
def test_post_ids_round_trip_as_decimal_strings(post_id: PostId) -> None:
    assert parse_post_id(str(post_id)) == post_id


@given(post_ids, post_ids)
def test_sortable_keys_order_as_the_ids_do(first: PostId, second: PostId) -> None:
    assert (sortable_key(first) < sortable_key(second)) == (first < second)
    assert from_sortable_key(sortable_key(first)) == first


def test_ids_above_two_to_the_53_would_lose_precision_as_doubles() -> None:
    # Why stores with double sort keys hold the sortable key instead of the number.
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    post_id = SnowflakeIdGenerator(clock).next_id()
    assert post_id > 2**53
    assert int(float(post_id)) != post_id or int(float(post_id + 1)) != post_id + 1


@given(post_ids)
def test_post_cursors_round_trip(post_id: PostId) -> None:
    assert decode_post_cursor(encode_post_cursor(post_id)) == post_id


def test_user_cursors_round_trip_and_are_not_post_cursors() -> None:
    cursor = encode_user_cursor(parse_user_id("bo"))
    assert decode_user_cursor(cursor) == "bo"
    with pytest.raises(InvalidCursor):
        decode_post_cursor(cursor)


@given(st.text(max_size=300))
def test_any_garbage_cursor_is_an_invalid_cursor(garbage: str) -> None:
    # Whatever a client sends, decoding either succeeds or says the cursor is invalid.
    for decode in (decode_post_cursor, decode_user_cursor):
        with contextlib.suppress(InvalidCursor):
            decode(garbage)


def test_a_cursor_too_long_is_refused() -> None:
    with pytest.raises(InvalidCursor):
        decode_post_cursor("A" * 1_000)


@pytest.mark.parametrize(
    ("content", "valid"),
    [("", False), ("x", True), ("é" * 5_000, True), ("x" * 5_001, False), ("a\x00b", False), ("a\x01b", True)],
)
def test_content_length_is_counted_in_characters(content: str, valid: bool) -> None:
    if valid:
        assert validate_content(content) == content
    else:
        with pytest.raises(InvalidContent):
            validate_content(content)


class TestSnowflake:
    def test_ids_strictly_increase_within_one_millisecond(self) -> None:
        ids = SnowflakeIdGenerator(ManualClock(), node=5)
        made = [ids.next_id() for _ in range(10_000)]
        assert made == sorted(set(made))

    def test_ids_keep_increasing_when_the_clock_steps_back(self) -> None:
        clock = ManualClock()
        ids = SnowflakeIdGenerator(clock)
        first = ids.next_id()
        clock.advance(timedelta(seconds=-5))
        assert ids.next_id() > first

    def test_ids_of_different_nodes_never_collide(self) -> None:
        clock = ManualClock()
        made = [SnowflakeIdGenerator(clock, node=node).next_id() for node in (0, 1, MAX_NODE) for _ in range(3)]
        assert len(set(made)) == len({*made})

    def test_an_id_tells_when_it_was_made(self) -> None:
        clock = ManualClock(datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC))
        assert timestamp_of(SnowflakeIdGenerator(clock).next_id()) == clock.now()

    def test_later_ids_are_larger(self) -> None:
        clock = ManualClock()
        ids = SnowflakeIdGenerator(clock, node=MAX_NODE)
        early = ids.next_id()
        clock.advance(timedelta(milliseconds=1))
        assert SnowflakeIdGenerator(clock, node=0).next_id() > early

    def test_a_full_sequence_moves_to_the_next_millisecond_not_to_another_node(self) -> None:
        clock = ManualClock()
        ids = SnowflakeIdGenerator(clock, node=3)
        made = [ids.next_id() for _ in range(4_097)]
        assert all((post_id >> 12) & MAX_NODE == 3 for post_id in made)
        assert timestamp_of(made[-1]) - timestamp_of(made[0]) == timedelta(milliseconds=1)

    @pytest.mark.parametrize("node", [-1, MAX_NODE + 1])
    def test_node_out_of_range_is_refused(self, node: int) -> None:
        with pytest.raises(ValueError, match="node"):
            SnowflakeIdGenerator(ManualClock(), node=node)

    def test_a_clock_before_the_epoch_is_refused(self) -> None:
        with pytest.raises(ValueError, match="outside the id range"):
            SnowflakeIdGenerator(ManualClock(datetime(2000, 1, 1, tzinfo=UTC))).next_id()


def test_page_encodes_as_the_contract_says() -> None:
    assert msgspec.json.decode(msgspec.json.encode(Page(items=[1, 2]))) == {"items": [1, 2], "next_cursor": None}
