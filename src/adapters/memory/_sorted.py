"""A sorted set on a plain list: the in-memory adapters' index for keyset reads."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Generic, Protocol, Self, TypeVar


class _Comparable(Protocol):
    def __lt__(self, other: Self, /) -> bool: ...


K = TypeVar("K", bound=_Comparable)


class SortedKeys(Generic[K]):
    """Distinct keys in ascending order with O(log n) lookups and keyset slices."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[K] = []

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: K) -> bool:
        index = bisect_left(self._keys, key)
        return index < len(self._keys) and self._keys[index] == key

    def __iter__(self) -> Iterator[K]:
        return iter(self._keys)

    def add(self, key: K) -> bool:
        """Insert ``key``; False when it was already present."""
        keys = self._keys
        if not keys or keys[-1] < key:
            # Ids mostly arrive in increasing order: appending skips the search.
            keys.append(key)
            return True
        index = bisect_left(keys, key)
        if index < len(keys) and keys[index] == key:
            return False
        keys.insert(index, key)
        return True

    def discard(self, key: K) -> bool:
        """Remove ``key``; False when it was absent."""
        index = bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            del self._keys[index]
            return True
        return False

    def lowest(self) -> K:
        return self._keys[0]

    def pop_lowest(self) -> K:
        return self._keys.pop(0)

    def descending(self, *, before: K | None, floor: K | None, limit: int) -> list[K]:
        """Up to ``limit`` keys with ``floor <= key < before``, largest first."""
        keys = self._keys
        stop = len(keys) if before is None else bisect_left(keys, before)
        start = 0 if floor is None else bisect_left(keys, floor)
        start = max(start, stop - limit)
        return keys[start:stop][::-1]

    def ascending(self, *, after: K | None, limit: int) -> list[K]:
        """Up to ``limit`` keys strictly greater than ``after``, smallest first."""
        start = 0 if after is None else bisect_right(self._keys, after)
        return self._keys[start : start + limit]
