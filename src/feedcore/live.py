"""Live home feeds: each open stream sends the entries its owner's feed gains, and what leaves it.

The feed is the source of truth, not the announcements. A stream keeps the id of the newest post it
sent; when an announcement wakes it, it reads its owner's feed (the same read as a page's, the
celebrity merge included) for what is newer than that id, oldest first. A client that comes back
with the last id it saw starts from there: nothing is missed and nothing sent twice, whichever
process serves it.

Posts are not fanned out strictly in id order (authors' events travel in several partitions), so a
post can enter a feed just below one already sent. An open stream therefore reads a few seconds
below its newest id as well, and skips the ids it remembers sending. (A client resuming with an id
may miss such a post that arrived while it was away: nothing says what it was sent below that id.)

Announcements only say whose feed to read again, so a stream holds a flag, a bounded set of
removals and of ids sent, never a queue of posts: a client that stops reading costs no more memory
than one that reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Final

import msgspec

from feedcore.errors import Forbidden, TooManyStreams
from feedcore.feed import HomeFeeds
from feedcore.ids import earlier_by
from feedcore.model import Post, PostId, UserId
from feedcore.ports import FeedChanges, FeedsChanged

#: Posts read and sent per wake-up at most; a stream further behind reads on at once.
_BATCH: Final = 20
#: How far below its newest id sent a stream looks for posts fanned out late, in milliseconds.
_LATE_MS: Final = 5_000
#: Ids sent that a stream remembers at most (it then looks no lower than the oldest of them).
_REMEMBERED: Final = 200


class PostAdded(msgspec.Struct, frozen=True, kw_only=True):
    """A post entered the feed."""

    post: Post


class PostsRemoved(msgspec.Struct, frozen=True, kw_only=True):
    """Posts left the feed: these, and every post of these authors (unfollowed)."""

    post_ids: list[PostId] = []
    author_ids: list[UserId] = []


class RemovalsLost(msgspec.Struct, frozen=True, kw_only=True):
    """Removals were dropped (the client read too slowly): posts shown may have left the feed."""


LiveEvent = PostAdded | PostsRemoved | RemovalsLost


class LiveFeed:
    """One open stream of one owner's home feed; :meth:`next` gives what to send."""

    __slots__ = (
        "_candidates",
        "_ended",
        "_feeds",
        "_hub",
        "_lost",
        "_merged",
        "_regraph",
        "_removed_authors",
        "_removed_posts",
        "_sent",
        "_start",
        "_woken",
        "after",
        "owner",
    )

    def __init__(self, hub: LiveFeeds, feeds: HomeFeeds, owner: UserId) -> None:
        self._hub = hub
        self._feeds = feeds
        self.owner = owner
        #: The newest post id sent (or the feed's newest when the stream began).
        self.after = PostId(0)
        self._woken = asyncio.Event()
        self._regraph = True
        #: Authors newly announced as celebrities, to check whether the owner follows them.
        self._candidates: set[UserId] = set()
        self._merged: frozenset[UserId] = frozenset()
        self._removed_posts: dict[PostId, None] = {}
        self._removed_authors: dict[UserId, None] = {}
        self._lost = False
        self._ended = False
        #: No lower than this is read: where the stream began, or what it no longer remembers sending.
        self._start = PostId(0)
        self._sent: dict[PostId, None] = {}

    @property
    def merged(self) -> frozenset[UserId]:
        """The authors whose unfanned posts reach this feed at read time, as last learnt."""
        return self._merged

    def end(self) -> None:
        """Have :meth:`next` say the stream is over (the process is stopping)."""
        self._ended = True
        self._woken.set()

    def wake(self, *, regraph: bool = False, candidates: Iterable[UserId] = ()) -> None:
        self._regraph |= regraph
        self._candidates.update(candidates)
        self._woken.set()

    def remove(self, *, post_id: PostId | None, author: UserId) -> None:
        """Queue a removal for the client; past the bound, they are dropped and the client told."""
        if post_id is None:
            self._removed_authors[author] = None
        else:
            self._removed_posts[post_id] = None
        if len(self._removed_posts) + len(self._removed_authors) > self._hub.max_removals:
            # Only a client that stops reading gets this far behind: a bound on what it costs.
            self._removed_posts.clear()
            self._removed_authors.clear()
            self._lost = True
        self._woken.set()

    async def next(self, *, idle: float) -> list[LiveEvent] | None:
        """What to send next: the removals queued, then the oldest posts newer than :attr:`after`.
        Waits for a wake-up up to ``idle`` seconds, and returns nothing if none came (nothing
        new either, when the streams poll); None once the stream is over."""
        poll = self._hub.poll_seconds
        if not self._woken.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle if poll is None else min(idle, poll)):
                    await self._woken.wait()
            if not self._woken.is_set() and poll is None:
                return []
        if self._ended:
            return None
        self._woken.clear()
        if self._regraph or self._candidates:
            self._regraph = False
            await self._learn_merged()
        events: list[LiveEvent] = []
        if self._lost:
            self._lost = False
            events.append(RemovalsLost())
        if self._removed_posts or self._removed_authors:
            events.append(PostsRemoved(post_ids=list(self._removed_posts), author_ids=list(self._removed_authors)))
            self._removed_posts.clear()
            self._removed_authors.clear()
        posts, more = await self._unsent()
        if posts:
            self.after = max(self.after, posts[-1].id)
            self._remember(post.id for post in posts)
        if more:
            self._woken.set()
        events += [PostAdded(post=post) for post in posts]
        return events

    async def _unsent(self) -> tuple[list[Post], bool]:
        """The oldest posts not sent yet, newer than the stream's start, and whether more remain."""
        floor = max(earlier_by(self.after, _LATE_MS), self._start)
        celebrities = self._merged - {self.owner}
        while True:
            posts, more = await self._feeds.newer(self.owner, after=floor, limit=_BATCH, celebrities=celebrities)
            unsent = [post for post in posts if post.id not in self._sent]
            if unsent or not more:
                return unsent, more
            floor = posts[-1].id

    def _remember(self, sent: Iterable[PostId]) -> None:
        remembered = self._sent
        remembered.update(dict.fromkeys(sent))
        floor = earlier_by(self.after, _LATE_MS)
        for post_id in list(remembered):  # oldest first: sent in id order, mostly
            if post_id >= floor and len(remembered) <= _REMEMBERED:
                break
            del remembered[post_id]
            self._start = max(self._start, post_id)

    async def start(self, last_event_id: PostId | None) -> None:
        await self._learn_merged()
        self._regraph = False
        if last_event_id is None:
            self.after = await self._feeds.newest(self.owner)
        else:
            self.after = last_event_id
            self._woken.set()
        self._start = self.after

    async def _learn_merged(self) -> None:
        candidates, self._candidates = self._candidates, set()
        merged = await self._feeds.merged_authors(self.owner, also=candidates)
        self._hub.relisted(self, self._merged, merged)
        self._merged = merged

    def close(self) -> None:
        self._hub.closed(self)


class LiveFeeds:
    """The live streams of one process, woken by the announcements of :class:`FeedChanges`.

    Without ``changes`` (no one announces, e.g. a processor elsewhere with nothing shared to
    announce through), every stream reads its feed again every ``poll_seconds``.
    """

    def __init__(
        self,
        *,
        feeds: HomeFeeds,
        changes: FeedChanges | None,
        max_streams: int,
        poll_seconds: float = 5.0,
        max_removals: int = 1_000,
    ) -> None:
        self._feeds = feeds
        self._changes = changes
        self.max_streams = max_streams
        self.max_removals = max_removals
        self.poll_seconds = None if changes is not None else poll_seconds
        self._count = 0
        self._ending = False
        self._by_owner: dict[UserId, set[LiveFeed]] = {}
        self._by_merged: dict[UserId, set[LiveFeed]] = {}
        #: Celebrities announced so far: a new one has every stream check whether its owner follows
        #: them (a post store may learn of a new celebrity later than the announcement comes).
        self._celebrities: set[UserId] = set()

    @property
    def open_streams(self) -> int:
        return self._count

    async def open(self, viewer: UserId, owner: UserId, *, last_event_id: PostId | None) -> LiveFeed:
        """A stream of ``owner``'s feed from after ``last_event_id``, or from now; only the owner
        may open one. Close it with :meth:`LiveFeed.close`."""
        if viewer != owner:
            raise Forbidden("a home feed is readable by its owner only")
        if self._ending:
            raise TooManyStreams("this process is stopping; retry shortly")
        if self._count >= self.max_streams:
            raise TooManyStreams(f"this process streams {self.max_streams} feeds already; retry shortly")
        stream = LiveFeed(self, self._feeds, owner)
        # Listed before its start reads the feed: a change from then on wakes it.
        self._count += 1
        self._by_owner.setdefault(owner, set()).add(stream)
        try:
            await stream.start(last_event_id)
        except BaseException:
            stream.close()
            raise
        return stream

    def end_all(self) -> None:
        """End every stream and open no more: the process is stopping, and its server waits for
        open responses to end. Clients resume elsewhere with their last id."""
        self._ending = True
        for stream in self._every_stream():
            stream.end()

    async def run(self) -> None:
        """Wake this process's streams as announcements come, until cancelled."""
        if self._changes is None:
            return
        async for change in self._changes.listen():
            if change is None:
                self._wake(self._every_stream(), regraph=True)
            else:
                self.apply(change)

    def apply(self, change: FeedsChanged) -> None:
        """Wake the streams ``change`` concerns, and queue its removals for them."""
        self._wake(self._of_owners(change.grown))
        self._wake(self._of_owners(change.regraphed), regraph=True)
        new = [author for author in change.merged if author not in self._celebrities]
        if new:
            self._celebrities.update(new)
            for stream in self._every_stream():
                stream.wake(candidates=new)
        self._wake(self._of_merged(change.merged))
        for removal in change.removals:
            streams = self._of_owners(removal.users)
            if removal.post_id is not None:  # a deleted celebrity's post left no materialised feed
                streams = (*streams, *self._of_merged((removal.author,)))
            for stream in streams:
                stream.remove(post_id=removal.post_id, author=removal.author)

    def _of_owners(self, users: Iterable[UserId]) -> tuple[LiveFeed, ...]:
        by_owner = self._by_owner
        return tuple(stream for user in users if user in by_owner for stream in by_owner[user])

    def _of_merged(self, authors: Iterable[UserId]) -> tuple[LiveFeed, ...]:
        by_merged = self._by_merged
        return tuple(stream for author in authors if author in by_merged for stream in by_merged[author])

    def _every_stream(self) -> tuple[LiveFeed, ...]:
        return tuple(stream for streams in self._by_owner.values() for stream in streams)

    @staticmethod
    def _wake(streams: Iterable[LiveFeed], *, regraph: bool = False) -> None:
        for stream in streams:
            stream.wake(regraph=regraph)

    def relisted(self, stream: LiveFeed, before: frozenset[UserId], after: frozenset[UserId]) -> None:
        for author in before - after:
            self._discard(self._by_merged, author, stream)
        for author in after - before:
            self._by_merged.setdefault(author, set()).add(stream)

    def closed(self, stream: LiveFeed) -> None:
        if stream not in self._by_owner.get(stream.owner, ()):
            return
        self._count -= 1
        self._discard(self._by_owner, stream.owner, stream)
        for author in stream.merged:
            self._discard(self._by_merged, author, stream)

    @staticmethod
    def _discard(index: dict[UserId, set[LiveFeed]], key: UserId, stream: LiveFeed) -> None:
        streams = index.get(key)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del index[key]
