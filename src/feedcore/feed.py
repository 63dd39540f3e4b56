"""Reading a home feed: rendered first pages, the cached window, the celebrity merge and the
timeline continuation.

A home feed is every non-deleted post whose author is the owner or someone the owner sees now
(follows and does not mute; a block removes the follows between its users), newest first. It is
assembled from disjoint id ranges, each served by the cheapest source that is complete for it::

    [window horizon, before)          feed cache (when the owner's feed is cached)
    [store horizon, window horizon)   materialised feed store
    [store horizon, before)           + celebrities' posts, never fanned out (the celebrity merge)
    [0, store horizon)                followees' own timelines (past what was materialised)

The cursor is the last id served, so every page continues strictly below it whatever arrived in
between: no gaps, no repeats, no OFFSET.

What may be served without a check, and why:

- The cached window is filled from visible posts only and dropped by every follow, unfollow, mute
  and unmute (at once by the request, and again when the processor has applied it), so its
  entries need no graph check. Deletes reach it through the post bodies: a deleted post's cached body says so.
- Entries the store serves may run behind the truth (an unfollow not yet processed), so their
  authors are checked against the graph.
- A rendered first page is kept only when it came from the window alone, for an owner who sees no
  celebrity, and only if the feed did not change between the read that began it and its keeping.
  Every change to the window drops it, and a deletion drops it in the feeds that hold the post
  after the post's body is buried, so a page built after the drop sees the burial.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from typing import Final

from feedcore.errors import Forbidden
from feedcore.model import Page, Post, PostId, UserId, decode_post_cursor
from feedcore.policies import Policies
from feedcore.ports import (
    NO_TELEMETRY,
    CachedFeed,
    CelebrityWindows,
    FeedCache,
    FeedReader,
    FeedView,
    PostBodies,
    PostStore,
    SocialGraph,
    Telemetry,
)
from feedcore.posts import page_of_posts
from feedcore.streams import Candidate, Fetch, Once, SingleFlight, merge_descending, paged, zero

_FOLLOWING_PAGE: Final = 1_000
#: The version of an empty set of celebrities.
_NO_CELEBRITIES: Final = "-"

#: How a transport encodes a page of posts; the bytes are what a kept rendered page holds.
Render = Callable[[Page[Post]], bytes]


class HomeFeeds:
    """Reads home feeds; one per process, as its single flights of cold rebuilds are.

    Without a ``cache`` every read is served by the stores; ``celebrity_windows`` and ``bodies``
    spare the stores the celebrity merge and the hydration of pages.
    """

    def __init__(
        self,
        *,
        posts: PostStore,
        graph: SocialGraph,
        feeds: FeedReader,
        policies: Policies,
        cache: FeedCache | None = None,
        celebrity_windows: CelebrityWindows | None = None,
        bodies: PostBodies | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._posts = posts
        self._graph = graph
        self._feeds = feeds
        self._policies = policies
        self._cache = cache
        self._celebrity_windows = celebrity_windows
        self._bodies = bodies
        self._telemetry = telemetry
        self._rebuilds = SingleFlight()

    async def page(self, viewer: UserId, owner: UserId, *, limit: int | None, cursor: str | None) -> Page[Post]:
        """One page of ``owner``'s home feed; only the owner may read it."""
        before, size = self._asked(viewer, owner, limit, cursor)
        page, _ = await self._assemble(owner, before, size, page=None)
        return page

    async def rendered(
        self, viewer: UserId, owner: UserId, *, limit: int | None, cursor: str | None, render: Render
    ) -> bytes:
        """One page as ``render`` encodes it. A first page that the cache keeps rendered is served as
        kept, in one cache read; one built now is kept when it may be."""
        before, size = self._asked(viewer, owner, limit, cursor)
        if before is not None or self._cache is None:
            page, _ = await self._assemble(owner, before, size, page=None)
            return render(page)
        celebrities = await self._posts.celebrities()
        key = f"{_version(celebrities)}/{size}"
        view = await self._view(self._cache, owner, None, size, page=key, celebrities=celebrities)
        self._telemetry.cache_lookups("page", hits=int(view.page is not None), misses=int(view.page is None))
        if view.page is not None:
            return view.page
        page, stamp = await self._assemble(owner, None, size, page=key, view=view, celebrities=celebrities)
        rendered = render(page)
        if stamp is not None:
            await self._cache.keep_page(owner, page=key, rendered=rendered, stamp=stamp)
        return rendered

    async def newer(
        self, owner: UserId, *, after: PostId, limit: int, celebrities: Collection[UserId] = ()
    ) -> tuple[list[Post], bool]:
        """The oldest ``limit`` posts of ``owner``'s home feed newer than ``after``, oldest first,
        and whether newer ones remain. (The caller checks who reads.) ``celebrities`` are known to
        be such even if the post store does not say so yet (it may lag behind other processes).

        Feeds are read newest first, so this walks down from the head a page at a time until it
        passes ``after``, holding one page: a stream far behind costs reads, not memory.
        """
        before: PostId | None = None
        previous: list[Post] = []
        above = 0  # pages above the one in hand, all of them newer than ``after``
        known = await self._posts.celebrities()
        if not known.issuperset(celebrities):
            known |= frozenset(celebrities)
        while True:
            page, _ = await self._assemble(owner, before, limit, page=None, celebrities=known)
            newer = [post for post in page.items if post.id > after]
            if len(newer) < len(page.items) or page.next_cursor is None:
                if not newer and previous:  # the page above ended right at ``after``
                    newer, above = previous, above - 1
                newer.reverse()
                return newer, above > 0
            previous, before, above = newer, newer[-1].id, above + 1

    async def newest(self, owner: UserId) -> PostId:
        """The id of the newest post of ``owner``'s home feed; 0 when it is empty."""
        page, _ = await self._assemble(owner, None, 1, page=None)
        return page.items[0].id if page.items else PostId(0)

    async def merged_authors(self, owner: UserId, *, also: Collection[UserId] = ()) -> frozenset[UserId]:
        """Whose posts not fanned out reach ``owner``'s feed at read time: the celebrities the owner
        follows (among those the post store knows, and ``also``), and the owner."""
        celebrities = (await self._posts.celebrities()) | frozenset(also)
        if not celebrities:
            return frozenset((owner,))
        return frozenset(await self._followed(_Read(owner), celebrities)) | {owner}

    def _asked(self, viewer: UserId, owner: UserId, limit: int | None, cursor: str | None) -> tuple[PostId | None, int]:
        if viewer != owner:
            raise Forbidden("a home feed is readable by its owner only")
        size = self._policies.page_size(limit)
        return (decode_post_cursor(cursor) if cursor is not None else None), size

    async def _view(
        self,
        cache: FeedCache,
        owner: UserId,
        before: PostId | None,
        size: int,
        *,
        page: str | None,
        celebrities: frozenset[UserId],
    ) -> FeedView:
        return await cache.view(owner, before=before, limit=size + 1, page=page, celebrities=_version(celebrities))

    async def _assemble(
        self,
        owner: UserId,
        before: PostId | None,
        size: int,
        *,
        page: str | None,
        view: FeedView | None = None,
        celebrities: frozenset[UserId] | None = None,
    ) -> tuple[Page[Post], str | None]:
        """The page, and the stamp to keep it rendered with when it may be kept (else None)."""
        if celebrities is None:
            celebrities = await self._posts.celebrities()
        read = _Read(owner)
        cache = self._cache
        if cache is not None and view is None:
            view = await self._view(cache, owner, before, size, page=None, celebrities=celebrities)
        seen = await self._seen(read, view, celebrities)
        window = view.window if view is not None else None
        if cache is not None and window is None:
            self._telemetry.cache_lookups("feed", hits=0, misses=1)
            await self._rebuilds.once(("feed", owner), lambda: self._rebuild(cache, owner))
            # No stamp now: this read's page is not kept (the next read's will be).
            view = await cache.view(owner, before=before, limit=size + 1)
            window = view.window
        elif window is not None:
            self._telemetry.cache_lookups("feed", hits=1, misses=0)
        if window is not None and not seen:
            found = await self._from_window(read, window, size)
            if found is not None:
                stamp = view.stamp if view is not None and page is not None and view.stamp else None
                return page_of_posts(found, size), stamp
        found = await self._visible(read, before, size + 1, window, seen)
        return page_of_posts(found, size), None

    async def _seen(self, read: _Read, view: FeedView | None, celebrities: frozenset[UserId]) -> frozenset[UserId]:
        """The celebrities whose posts the owner sees: the owner, if one, and those the owner
        follows and does not mute. The graph is asked once per owner and set of celebrities; the
        answer is kept beside the owner's cached feed, and dropped with it by follows, unfollows,
        mutes and unmutes."""
        if not celebrities:
            return frozenset()
        if view is not None and view.celebrities is not None:
            seen = view.celebrities
            read.learn(celebrities, seen)
            return seen
        seen = frozenset(await self._followed(read, celebrities))
        if self._cache is not None:
            await self._cache.keep_celebrities(read.owner, celebrities=_version(celebrities), seen=seen)
        return seen

    async def _from_window(self, read: _Read, window: CachedFeed, size: int) -> list[Post] | None:
        """The page from the window's first slice alone, when it holds the page and its look-ahead
        (or the whole feed); None when deleted posts left it short."""
        found = await self._live(read, window.entries)
        whole = len(window.entries) <= size and window.horizon == 0
        return found if len(found) > size or whole else None

    async def _visible(
        self,
        read: _Read,
        before: PostId | None,
        wanted: int,
        window: CachedFeed | None,
        seen: frozenset[UserId],
    ) -> list[Post]:
        """Up to ``wanted`` visible posts below ``before``, newest first, from every source."""
        found: list[Post] = []
        batch: list[Candidate] = []
        async with contextlib.aclosing(self._candidates(read, before, wanted, window, seen)) as candidates:
            async for candidate in candidates:
                batch.append(candidate)
                if len(batch) >= wanted - len(found):
                    found += await self._keep_visible(read, batch)
                    batch = []
                    if len(found) >= wanted:
                        return found[:wanted]
        found += await self._keep_visible(read, batch)
        return found[:wanted]

    async def _candidates(
        self,
        read: _Read,
        before: PostId | None,
        batch: int,
        window: CachedFeed | None,
        seen: frozenset[UserId],
    ) -> AsyncGenerator[Candidate, None]:
        owner = read.owner
        store_horizon = Once(lambda: self._feeds.horizon(owner))
        # A window complete to the feed's beginning leaves nothing for the store or the timelines.
        complete = window is not None and window.horizon == 0
        merge_floor = Once(zero) if complete else store_horizon
        materialised = self._materialised(owner, before, batch, window, store_horizon)
        merged = merge_descending(materialised, self._celebrity_posts(read, seen, before, batch, merge_floor))
        async with contextlib.aclosing(merged):
            async for candidate in merged:
                yield candidate
        if complete:
            return
        # Below what was materialised, the followees' timelines take over. A window left behind by
        # a processor that died before dropping it can reach below the store's horizon: the
        # timelines then start below the window, so that nothing is served twice.
        floor = await store_horizon()
        if window is not None:
            floor = min(floor, window.horizon)
        if floor > 0:
            deep_before = floor if before is None else min(before, floor)
            async with contextlib.aclosing(paged(self._timelines(read), PostId(deep_before), batch)) as timelines:
                async for post_id in timelines:
                    yield post_id, True

    async def _materialised(
        self,
        owner: UserId,
        before: PostId | None,
        batch: int,
        window: CachedFeed | None,
        store_horizon: Once[PostId],
    ) -> AsyncGenerator[Candidate, None]:
        """The materialised feed below ``before``: the cached window's entries, then the store's below
        the window (or below the last entry served, should the window move under this read)."""
        store_before = before
        if window is not None and self._cache is not None:
            horizon = window.horizon
            store_before = horizon if before is None else PostId(min(before, horizon))
            entries = window.entries
            while True:
                for post_id in entries:
                    yield post_id, True
                if len(entries) < batch + 1:
                    break
                following = await self._cache.view(owner, before=entries[-1], limit=batch + 1)
                if following.window is None or following.window.horizon != horizon:
                    store_before = entries[-1]
                    break
                entries = following.window.entries
        if store_before == 0:
            return
        floor = await store_horizon()

        async def fetch(below: PostId | None, limit: int) -> list[PostId]:
            return await self._feeds.entries(owner, before=below, floor=floor, limit=limit)

        async with contextlib.aclosing(paged(fetch, store_before, batch)) as stored:
            async for post_id in stored:
                yield post_id, False

    async def _celebrity_posts(
        self, read: _Read, seen: frozenset[UserId], before: PostId | None, batch: int, floor: Once[PostId]
    ) -> AsyncGenerator[Candidate, None]:
        """The posts of the celebrities the owner sees, at or above ``floor``, newest first."""
        if not seen:
            return

        async def fetch(below: PostId | None, limit: int) -> list[PostId]:
            return await self._celebrity_ids(read, seen, before=below, floor=await floor(), limit=limit)

        async with contextlib.aclosing(paged(fetch, before, batch)) as posts:
            async for post_id in posts:
                yield post_id, True

    async def _celebrity_ids(
        self, read: _Read, authors: Collection[UserId], *, before: PostId | None, floor: PostId, limit: int
    ) -> list[PostId]:
        """The newest ``limit`` unfanned posts of ``authors`` in ``[floor, before)``: from the cached
        windows where they reach, from the store below them and for authors not cached."""
        windows = await self._celebrity_windows_of(authors, before=before, limit=limit)
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
            found.update(read.remember(latest))
        return sorted(found, reverse=True)[:limit]

    async def _celebrity_windows_of(
        self, authors: Collection[UserId], *, before: PostId | None, limit: int
    ) -> dict[UserId, CachedFeed]:
        windows_port = self._celebrity_windows
        if windows_port is None:
            return {}
        windows = await windows_port.read(authors, before=before, limit=limit)
        cold = [author for author in authors if author not in windows]
        self._telemetry.cache_lookups("celebrity", hits=len(windows), misses=len(cold))
        for author in cold:
            rebuild = functools.partial(self._rebuild_celebrity, windows_port, author)
            await self._rebuilds.once(("celebrity", author), rebuild)
        if cold:
            windows.update(await windows_port.read(cold, before=before, limit=limit))
        return windows

    def _timelines(self, read: _Read) -> Fetch:
        authors: list[UserId] | None = None

        async def fetch(before: PostId | None, limit: int) -> list[PostId]:
            nonlocal authors
            if authors is None:
                authors = [read.owner, *await self._all_seen(read.owner)]
            found = await self._posts.latest(authors, before=before, floor=PostId(0), limit=limit)
            return read.remember(found)

        return fetch

    async def _all_seen(self, owner: UserId) -> list[UserId]:
        everyone: list[UserId] = []
        after: UserId | None = None
        while True:
            page = await self._graph.seen(owner, after=after, limit=_FOLLOWING_PAGE)
            everyone += page
            if len(page) < _FOLLOWING_PAGE:
                return everyone
            after = page[-1]

    async def _rebuild(self, cache: FeedCache, owner: UserId) -> None:
        """Fill the owner's cached window from the store, with visible posts only: begun in the
        cache first, so that a change the processor makes meanwhile (and leaves the cache alone
        for, the feed not being cached yet) makes the cache keep nothing rather than a copy that
        lacks it. The store is read once, the cache written once after it."""
        size = self._policies.cache_window
        await cache.begin_fill(owner)
        store_horizon = await self._feeds.horizon(owner)
        entries = await self._feeds.entries(owner, before=None, floor=store_horizon, limit=size)
        horizon = entries[-1] if len(entries) == size else store_horizon
        authors = await self._posts.authors_of(entries)
        seen = await self._followed(_Read(owner), set(authors.values()))
        visible = [post_id for post_id in entries if authors.get(post_id) in seen]
        if await cache.finish_fill(owner, visible, horizon=horizon):
            self._telemetry.cache_rebuilt("feed")

    async def _rebuild_celebrity(self, windows: CelebrityWindows, author: UserId) -> None:
        size = self._policies.cache_window
        await windows.begin_fill(author)
        found = await self._posts.latest((author,), before=None, floor=PostId(0), limit=size, unfanned_only=True)
        horizon = found[-1].id if len(found) == size else PostId(0)
        if self._bodies is not None:
            await self._bodies.keep(found)
        if await windows.finish_fill(author, [post.id for post in found], horizon=horizon):
            self._telemetry.cache_rebuilt("celebrity")

    async def _followed(self, read: _Read, authors: Collection[UserId]) -> set[UserId]:
        """Those of ``authors`` whose posts the owner sees: the owner, and whom the owner follows
        and does not mute."""
        unknown = {author for author in authors if author not in read.visible}
        if unknown:
            read.learn(unknown, await self._graph.seen_among(read.owner, unknown))
        return {author for author in authors if read.visible[author]}

    async def _keep_visible(self, read: _Read, candidates: Sequence[Candidate]) -> list[Post]:
        """The live posts among ``candidates`` whose authors the owner sees, in their order."""
        posts = await self._live(read, [post_id for post_id, _ in candidates])
        trusted = {post_id for post_id, known in candidates if known}
        unknown = {post.author_id for post in posts if post.id not in trusted}
        visible = await self._followed(read, unknown) if unknown else set()
        return [post for post in posts if post.id in trusted or post.author_id in visible]

    async def _live(self, read: _Read, post_ids: Sequence[PostId]) -> list[Post]:
        """The live posts among ``post_ids``, in their order: cached bodies first, then the store."""
        missing = [post_id for post_id in post_ids if post_id not in read.loaded]
        if missing and self._bodies is not None:
            cached = await self._bodies.get(missing)
            read.loaded.update(cached)
            self._telemetry.cache_lookups("post", hits=len(cached), misses=len(missing) - len(cached))
            missing = [post_id for post_id in missing if post_id not in cached]
        if missing:
            found = await self._posts.get_many(missing)
            read.loaded.update(found)
            read.loaded.update((post_id, None) for post_id in missing if post_id not in found)
            if self._bodies is not None and found:
                await self._bodies.keep(list(found.values()))
        loaded = read.loaded
        return [post for post_id in post_ids if (post := loaded.get(post_id)) is not None]


class _Read:
    """What one read has learnt: posts loaded (None: deleted) and whose posts the owner sees."""

    __slots__ = ("loaded", "owner", "visible")

    def __init__(self, owner: UserId) -> None:
        self.owner = owner
        self.loaded: dict[PostId, Post | None] = {}
        self.visible: dict[UserId, bool] = {owner: True}

    def learn(self, authors: Collection[UserId], seen: Collection[UserId]) -> None:
        for author in authors:
            self.visible.setdefault(author, author in seen)

    def remember(self, found: list[Post]) -> list[PostId]:
        """Keep posts a store read returned whole, by authors the owner sees; returns their ids."""
        for post in found:
            self.loaded[post.id] = post
            self.visible[post.author_id] = True
        return [post.id for post in found]


def _version(celebrities: frozenset[UserId]) -> str:
    """A name for a set of celebrities, the same in every process (built-in hashes of text are not)."""
    return _digest(celebrities) if celebrities else _NO_CELEBRITIES


@functools.lru_cache(maxsize=8)
def _digest(authors: frozenset[UserId]) -> str:
    return hashlib.blake2b("\n".join(sorted(authors)).encode(), digest_size=16).hexdigest()
