"""Reading a home feed: the materialised head, the celebrity merge and the timeline continuation.

A home feed is every non-deleted post whose author is the owner or someone the owner follows now,
newest first. It is assembled from disjoint id ranges, each served by the cheapest source that is
complete for it::

    [cache horizon, before)          feed cache (when the owner's feed is cached)
    [store horizon, cache horizon)   materialised feed store
    [store horizon, before)          + posts that were never fanned out (celebrity merge)
    [0, store horizon)               followees' own timelines (past what was materialised)

The cursor is the last id served, so every page continues strictly below it whatever arrived in
between: no gaps, no repeats, no OFFSET. Materialised entries may run behind the truth (an unfollow
or delete not yet processed), so each post the store serves is checked against the graph and the
post store. The cached copy needs no graph check: it is rebuilt from visible posts only, and dropped
by every unfollow (at once by the request, and again when the processor has applied it). Deletes
reach it through the post bodies: a deleted post's cached body says so.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Sequence

from feedcore.errors import Forbidden
from feedcore.model import Page, Post, PostId, UserId, decode_post_cursor
from feedcore.policies import Policies
from feedcore.ports import NO_TELEMETRY, CachedFeed, FeedCache, FeedReader, PostStore, SocialGraph, Telemetry
from feedcore.posts import page_of_posts

_FOLLOWING_PAGE = 1_000

Fetch = Callable[[PostId | None, int], Awaitable[list[PostId]]]


async def read_home_feed(
    viewer: UserId,
    owner: UserId,
    *,
    limit: int | None,
    cursor: str | None,
    posts: PostStore,
    graph: SocialGraph,
    feeds: FeedReader,
    cache: FeedCache | None,
    policies: Policies,
    rebuilds: Rebuilds | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> Page[Post]:
    """One page of ``owner``'s home feed; only the owner may read it.

    ``rebuilds``, shared by the reads of one process, makes concurrent first reads of a cold feed
    wait for one rebuild of its cached copy instead of each making its own.
    """
    if viewer != owner:
        raise Forbidden("a home feed is readable by its owner only")
    size = policies.page_size(limit)
    before = decode_post_cursor(cursor) if cursor is not None else None
    reader = _FeedRead(
        owner,
        posts=posts,
        graph=graph,
        feeds=feeds,
        cache=cache,
        policies=policies,
        rebuilds=rebuilds or Rebuilds(),
        telemetry=telemetry,
    )
    return page_of_posts(await reader.visible(before, size + 1), size)


class Rebuilds:
    """Single flight for cold feeds: one rebuild of a feed's cached copy at a time, in one process;
    reads that find it under way wait for it and then read the copy."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[None]] = {}

    async def once(self, key: Hashable, rebuild: Callable[[], Awaitable[None]]) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)
            return
        done = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            await rebuild()
        finally:
            # Waiters go on either way: without a copy, the store serves them.
            del self._running[key]
            done.set_result(None)


class _FeedRead:
    """The state of one page read: which authors are known visible and which posts are loaded."""

    def __init__(
        self,
        owner: UserId,
        *,
        posts: PostStore,
        graph: SocialGraph,
        feeds: FeedReader,
        cache: FeedCache | None,
        policies: Policies,
        rebuilds: Rebuilds,
        telemetry: Telemetry,
    ) -> None:
        self._owner = owner
        self._telemetry = telemetry
        self._rebuilds = rebuilds
        self._posts = posts
        self._graph = graph
        self._feeds = feeds
        self._cache = cache
        self._policies = policies
        self._visible_authors: dict[UserId, bool] = {owner: True}
        self._loaded: dict[PostId, Post] = {}
        #: Ids served from the cached copy, whose authors need no graph check.
        self._trusted: set[PostId] = set()
        self._horizon: PostId | None = None
        #: The horizon of the cached copy this read served from, if it served from one.
        self._cache_floor: PostId | None = None

    async def visible(self, before: PostId | None, wanted: int) -> list[Post]:
        """Up to ``wanted`` visible posts below ``before``, newest first."""
        found: list[Post] = []
        batch: list[PostId] = []
        async for post_id in self._candidates(before, wanted):
            batch.append(post_id)
            if len(batch) >= wanted - len(found):
                found += await self._keep_visible(batch)
                batch = []
                if len(found) >= wanted:
                    return found[:wanted]
        found += await self._keep_visible(batch)
        return found[:wanted]

    async def _candidates(self, before: PostId | None, batch: int) -> AsyncIterator[PostId]:
        head = _merge_descending(self._materialised(before, batch), _paged(self._unfanned_fetch(), before, batch))
        async for post_id in head:
            yield post_id
        # Below what the materialised feed served, the followees' timelines take over. A cached
        # copy left behind by a processor that died before dropping it can reach below the store's
        # horizon: the timelines then start below the copy, so that nothing is served twice.
        if self._cache_floor == 0:
            return  # a copy complete to the feed's very beginning: nothing lies below it
        floor = await self._store_horizon()
        if self._cache_floor is not None:
            floor = min(floor, self._cache_floor)
        if floor > 0:
            deep_before = floor if before is None else min(before, floor)
            async for post_id in _paged(self._timelines_fetch(), PostId(deep_before), batch):
                yield post_id

    async def _store_horizon(self) -> PostId:
        """The materialised feed's horizon, read once, and only by the reads that need it: a page
        served from the cache, with no celebrity to merge, never does."""
        if self._horizon is None:
            self._horizon = await self._feeds.horizon(self._owner)
        return self._horizon

    async def _merge_floor(self) -> PostId:
        """Down to where unfanned posts are merged in; the timelines take over below it. A cached
        copy complete to the feed's beginning, which the materialised stream has read by the time
        the merge first asks, leaves no timelines below it: the merge then goes down to 0 too,
        without asking the store."""
        return PostId(0) if self._cache_floor == 0 else await self._store_horizon()

    async def _materialised(self, before: PostId | None, batch: int) -> AsyncIterator[PostId]:
        store_before = before
        cached = await self._cached(before, batch)
        if cached is not None and self._cache is not None:
            # A cached copy is filled at or above the store's horizon and dropped whenever that
            # horizon moves (follows and unfollows invalidate it): it is complete down to its own.
            horizon = cached.horizon
            self._cache_floor = horizon
            store_before = horizon if before is None else PostId(min(before, horizon))
            while True:
                served = [post_id for post_id in cached.entries if post_id >= horizon]
                self._trusted.update(served)
                for post_id in served:
                    yield post_id
                if len(served) < batch + 1:
                    break
                cached = await self._cache.read(self._owner, before=served[-1], limit=batch + 1)
                if cached is None or cached.horizon != horizon:
                    # The window moved under this read: the store serves all below what was served.
                    store_before = served[-1]
                    break
        if store_before == 0:
            return
        store_horizon = await self._store_horizon()

        async def fetch(below: PostId | None, limit: int) -> list[PostId]:
            return await self._feeds.entries(self._owner, before=below, floor=store_horizon, limit=limit)

        async for post_id in _paged(fetch, store_before, batch):
            yield post_id

    async def _cached(self, before: PostId | None, batch: int) -> CachedFeed | None:
        """The first cached slice, rebuilding a cold feed from the store first."""
        if self._cache is None:
            return None
        cached = await self._cache.read(self._owner, before=before, limit=batch + 1)
        self._telemetry.cache_lookups("feed", hits=int(cached is not None), misses=int(cached is None))
        if cached is None:
            cache, store_horizon = self._cache, await self._store_horizon()
            await self._rebuilds.once(("feed", self._owner), lambda: self._rebuild_cache(cache, store_horizon))
            cached = await self._cache.read(self._owner, before=before, limit=batch + 1)
        return cached

    async def _rebuild_cache(self, cache: FeedCache, store_horizon: PostId) -> None:
        window = self._policies.cache_window
        entries = await self._feeds.entries(self._owner, before=None, floor=store_horizon, limit=window)
        horizon = entries[-1] if len(entries) == window else store_horizon
        visible = [post.id for post in await self._keep_visible(entries)]
        await cache.fill(self._owner, visible, horizon=horizon)
        self._telemetry.cache_rebuilt("feed")
        # The processor may have changed the store between that read and the fill, and left the
        # cache alone because the feed was not cached yet: then the copy may lack the change, and
        # it is dropped (this read is served by the store). Changes after this second look reach
        # the cached copy through the processor.
        again = await self._feeds.entries(self._owner, before=None, floor=store_horizon, limit=window)
        if again != entries or await self._feeds.horizon(self._owner) != store_horizon:
            await cache.invalidate(self._owner)

    def _unfanned_fetch(self) -> Fetch:
        authors: Collection[UserId] | None = None

        async def fetch(before: PostId | None, limit: int) -> list[PostId]:
            nonlocal authors
            if authors is None:
                authors = await self._followed_unfanned()
            if not authors:
                return []
            return await self._unfanned(authors, before=before, floor=await self._merge_floor(), limit=limit)

        return fetch

    async def _unfanned(
        self, authors: Collection[UserId], *, before: PostId | None, floor: PostId, limit: int
    ) -> list[PostId]:
        """The newest ``limit`` unfanned posts of ``authors`` in ``[floor, before)``: from the cached
        windows where they reach, from the store below them and for authors Redis does not hold."""
        windows = await self._unfanned_windows(authors, before=before, limit=limit)
        found: set[PostId] = set()
        from_store: list[UserId] = []
        for author in authors:
            window = windows.get(author)
            if window is None:
                from_store.append(author)
                continue
            found.update(post_id for post_id in window.entries if post_id >= floor)
            if len(window.entries) < limit and window.horizon > floor:
                from_store.append(author)  # the window ran out: older posts are in the store only
        if from_store:
            latest = await self._posts.latest(from_store, before=before, floor=floor, limit=limit, unfanned_only=True)
            found.update(self._remember(latest))
        return sorted(found, reverse=True)[:limit]

    async def _unfanned_windows(
        self, authors: Collection[UserId], *, before: PostId | None, limit: int
    ) -> dict[UserId, CachedFeed]:
        if self._cache is None:
            return {}
        cache = self._cache
        windows = await cache.read_unfanned(authors, before=before, limit=limit)
        cold = [author for author in authors if author not in windows]
        self._telemetry.cache_lookups("unfanned", hits=len(windows), misses=len(cold))
        for author in cold:
            await self._rebuilds.once(("unfanned", author), functools.partial(self._rebuild_unfanned, cache, author))
        if cold:
            windows.update(await cache.read_unfanned(cold, before=before, limit=limit))
        return windows

    async def _rebuild_unfanned(self, cache: FeedCache, author: UserId) -> None:
        window = self._policies.cache_window

        async def newest() -> list[Post]:
            return await self._posts.latest((author,), before=None, floor=PostId(0), limit=window, unfanned_only=True)

        found = await newest()
        horizon = found[-1].id if len(found) == window else PostId(0)
        await cache.keep_posts(found)
        await cache.fill_unfanned(author, [post.id for post in found], horizon=horizon)
        self._telemetry.cache_rebuilt("unfanned")
        # As for feeds: a post the processor applied meanwhile may be missing from the copy.
        if await newest() != found:
            await cache.invalidate_unfanned(author)

    def _timelines_fetch(self) -> Fetch:
        authors: list[UserId] | None = None

        async def fetch(before: PostId | None, limit: int) -> list[PostId]:
            nonlocal authors
            if authors is None:
                authors = [self._owner, *await self._all_following()]
            found = await self._posts.latest(authors, before=before, floor=PostId(0), limit=limit)
            return self._remember(found)

        return fetch

    async def _all_following(self) -> list[UserId]:
        everyone: list[UserId] = []
        after: UserId | None = None
        while True:
            page = await self._graph.following(self._owner, after=after, limit=_FOLLOWING_PAGE)
            everyone += page
            if len(page) < _FOLLOWING_PAGE:
                return everyone
            after = page[-1]

    def _remember(self, found: list[Post]) -> list[PostId]:
        for post in found:
            self._loaded[post.id] = post
            self._visible_authors[post.author_id] = True
        return [post.id for post in found]

    async def _followed_unfanned(self) -> set[UserId]:
        """The unfanned authors the owner sees. The graph is asked once per owner and set of
        unfanned authors: the answer is kept in the cache under a digest of that set, and dropped
        with the owner's cached feed, which follows and unfollows drop."""
        unfanned = await self._posts.unfanned_authors()
        if not unfanned or self._cache is None:
            return await self._followed(unfanned)
        digest = _digest(unfanned)
        kept = await self._cache.read_followed_unfanned(self._owner, digest=digest)
        if kept is None:
            followed = await self._followed(unfanned)
            await self._cache.keep_followed_unfanned(self._owner, digest=digest, authors=followed)
            return followed
        for author in unfanned:
            self._visible_authors.setdefault(author, author in kept)
        return {author for author in unfanned if self._visible_authors[author]}

    async def _followed(self, authors: Collection[UserId]) -> set[UserId]:
        """Those of ``authors`` whose posts the owner sees: the owner and whom the owner follows."""
        unknown = {author for author in authors if author not in self._visible_authors}
        if unknown:
            followed = await self._graph.followed_among(self._owner, unknown)
            for author in unknown:
                self._visible_authors[author] = author in followed
        return {author for author in authors if self._visible_authors[author]}

    async def _keep_visible(self, post_ids: list[PostId]) -> list[Post]:
        await self._load([post_id for post_id in post_ids if post_id not in self._loaded])
        loaded = [self._loaded[post_id] for post_id in post_ids if post_id in self._loaded]
        visible = await self._followed({post.author_id for post in loaded if post.id not in self._trusted})
        return [post for post in loaded if post.id in self._trusted or post.author_id in visible]

    async def _load(self, post_ids: Sequence[PostId]) -> None:
        """Load the live posts among ``post_ids``: cached bodies first, then the store."""
        if not post_ids:
            return
        missing = post_ids
        if self._cache is not None:
            cached = await self._cache.posts(post_ids)
            self._loaded.update((post_id, post) for post_id, post in cached.items() if post is not None)
            missing = [post_id for post_id in post_ids if post_id not in cached]
            self._telemetry.cache_lookups("post", hits=len(cached), misses=len(missing))
        if missing:
            found = await self._posts.get_many(missing)
            self._loaded.update(found)
            if self._cache is not None and found:
                await self._cache.keep_posts(list(found.values()))


async def _paged(fetch: Fetch, before: PostId | None, batch: int) -> AsyncIterator[PostId]:
    """Every id ``fetch`` serves below ``before``, newest first, ``batch`` (and one more) at a time.

    The one more is the look-ahead a merge takes past a page: it costs no extra round trip.
    """
    while True:
        found = await fetch(before, batch + 1)
        for post_id in found:
            yield post_id
        if len(found) < batch + 1:
            return
        before = found[-1]


async def _merge_descending(*streams: AsyncIterator[PostId]) -> AsyncIterator[PostId]:
    """Merge descending streams into one, dropping repeats."""
    heads: dict[int, PostId] = {}
    for index, stream in enumerate(streams):
        first = await anext(stream, None)
        if first is not None:
            heads[index] = first
    last: PostId | None = None
    while heads:
        index = max(heads, key=heads.__getitem__)
        post_id = heads[index]
        following = await anext(streams[index], None)
        if following is None:
            del heads[index]
        else:
            heads[index] = following
        if post_id != last:
            yield post_id
            last = post_id


@functools.lru_cache(maxsize=8)
def _digest(authors: frozenset[UserId]) -> str:
    """A digest of a set of authors, the same in every process (built-in hashes of text are not)."""
    return hashlib.blake2b("\n".join(sorted(authors)).encode(), digest_size=16).hexdigest()
