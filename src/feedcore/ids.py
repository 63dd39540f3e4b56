"""Time-sortable unique ids.

Layout of the 63 bits (the sign bit stays 0, so ids fit a signed 64-bit column)::

    | 41 bits: milliseconds since 2024-01-01 UTC | 10 bits: node | 12 bits: sequence |

Ids from one generator strictly increase. Generators with distinct node numbers never collide.
Ordering ids orders posts by creation time to the millisecond (ties broken by node and sequence).
Ids exceed 2**53, so they are never stored as floating-point numbers (see
:func:`feedcore.model.sortable_key`) and travel in JSON as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from feedcore.model import PostId
from feedcore.ports import Clock

EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
NODE_BITS: Final = 10
SEQUENCE_BITS: Final = 12
MAX_NODE: Final = (1 << NODE_BITS) - 1
_MAX_SEQUENCE: Final = (1 << SEQUENCE_BITS) - 1
_TIMESTAMP_SHIFT: Final = NODE_BITS + SEQUENCE_BITS
_MAX_MILLIS: Final = (1 << 41) - 1


def earlier_by(post_id: PostId, milliseconds: int) -> PostId:
    """The first id a generator could make ``milliseconds`` before it made ``post_id``."""
    millis = max(0, (post_id >> _TIMESTAMP_SHIFT) - milliseconds)
    return PostId(millis << _TIMESTAMP_SHIFT)


def timestamp_of(post_id: PostId) -> datetime:
    """When an id was made, to the millisecond."""
    millis = post_id >> _TIMESTAMP_SHIFT
    return datetime.fromtimestamp(EPOCH.timestamp() + millis / 1000, tz=UTC)


class SnowflakeIdGenerator:
    """Makes ids from a clock and a node number that no other live generator uses."""

    def __init__(self, clock: Clock, node: int = 0) -> None:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node must be between 0 and {MAX_NODE}")
        self._clock = clock
        self._node = node
        self._last = 0

    def next_id(self) -> PostId:
        millis = int((self._clock.now() - EPOCH).total_seconds() * 1000)
        if not 0 <= millis <= _MAX_MILLIS:
            raise ValueError(f"the clock reads {self._clock.now()}, outside the id range")
        sequence = 0
        last_millis = self._last >> _TIMESTAMP_SHIFT
        if millis <= last_millis:
            # Same millisecond, or the clock stepped back: continue after the last id rather than
            # go back in time; a full sequence borrows the next millisecond.
            millis, sequence = last_millis, (self._last & _MAX_SEQUENCE) + 1
            if sequence > _MAX_SEQUENCE:
                millis, sequence = millis + 1, 0
        self._last = (millis << _TIMESTAMP_SHIFT) | (self._node << SEQUENCE_BITS) | sequence
        return PostId(self._last)
