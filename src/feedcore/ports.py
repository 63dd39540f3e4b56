"""The core's only view of the world.

Every port has an in-memory adapter (``adapters.memory``) and a real one. Ports speak domain
types only. Writes that the design requires to be atomic are single port calls (a post and its
outbox event) or happen inside one :class:`FeedTransaction`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Final, Protocol

import msgspec

from feedcore.events import Event, PostDeleted, PostPublished, UserFollowed, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.model import Post, PostId, UserId


class Clock(Protocol):
    # Synchronous on purpose: reading the time is not I/O and sits on every write path.
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class IdGenerator(Protocol):
    def next_id(self) -> PostId:
        """A new id, unique and greater than every id this generator returned before."""
        ...


class IdempotencyClaim(msgspec.Struct, frozen=True, kw_only=True):
    """An Idempotency-Key sent with a new post, and the fingerprint of the request it came with."""

    key: str
    fingerprint: str


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a live Idempotency-Key stands for: the first request's fingerprint and its post."""

    fingerprint: str
    #: None while the first request with the key is still in flight.
    post: Post | None = None


class PostStore(Protocol):
    """Posts, and the outbox their events leave through."""

    async def publish(
        self,
        post: Post,
        event: PostPublished,
        *,
        claim: IdempotencyClaim | None = None,
        fan_out_up_to: int | None = None,
    ) -> Post | IdempotencyRecord:
        """Store ``post``, append ``event`` to the outbox and record ``claim``, in one atomic step.

        With ``fan_out_up_to``, whether the post is fanned out is decided in that step: it is when
        its author has at most that many followers (``post.fan_out`` is not looked at). Without it,
        ``post.fan_out`` is stored as it is.

        Idempotency-Keys are scoped per author and kept for a while (24 h or more).

        Returns:
            The post as stored. When ``claim``'s key is already live for the author, stores nothing
            and returns that key's record instead.
        """
        ...

    async def delete(self, post_id: PostId, event: PostDeleted) -> list[UserId] | None:
        """Mark a post deleted and append ``event`` to the outbox in one atomic step.

        Returns:
            None, appending nothing, when the post does not exist or is already deleted. Otherwise
            whose materialised feeds hold the post, read in the same step: every entry of it written
            before the deletion is there, and none can be written after it.
        """
        ...

    async def get_many(self, post_ids: Collection[PostId]) -> dict[PostId, Post]:
        """The posts among ``post_ids`` that exist and are not deleted."""
        ...

    async def authors_of(self, post_ids: Collection[PostId]) -> dict[PostId, UserId]:
        """The author of each post among ``post_ids`` that exists and is not deleted (what a read
        needs to know whether to show a post, without its content)."""
        ...

    async def latest(
        self,
        authors: Collection[UserId],
        *,
        before: PostId | None,
        floor: PostId,
        limit: int,
        unfanned_only: bool = False,
    ) -> list[Post]:
        """Non-deleted posts of ``authors`` with ``floor <= id < before``, newest first.

        ``unfanned_only`` keeps only posts published with ``fan_out=False``.
        """
        ...

    async def count_by(self, author: UserId) -> int:
        """How many non-deleted posts ``author`` has."""
        ...

    async def celebrities(self) -> frozenset[UserId]:
        """Every author with at least one non-deleted post published with ``fan_out=False``: the
        authors whose posts reads merge in, for whoever follows them.

        Publishes and deletes through this store show at once; an adapter shared by several
        processes may show another process's publishes up to a second late (as fan-out is late).
        """
        ...


class Outbox(Protocol):
    """The relay's side of the outbox that :class:`PostStore` and :class:`SocialGraph` append to."""

    async def relay(self, publish: Callable[[Sequence[Event]], Awaitable[None]], *, limit: int) -> int:
        """Hand up to ``limit`` of the oldest events to ``publish``; remove them once it returns.

        When ``publish`` raises, the events stay and are handed out again later, so each event is
        published at least once. Concurrent relays never hand out the same event at the same time.

        Returns:
            How many events were published.
        """
        ...

    async def wait(self, max_wait: float) -> None:
        """Return once there may be new events, or after ``max_wait`` seconds at most."""
        ...

    async def backlog(self, *, at_most: int | None = None) -> int:
        """How many events wait, counted up to ``at_most`` (None: all)."""
        ...


class FollowCounts(msgspec.Struct, frozen=True, kw_only=True):
    followers: int
    following: int


class SocialGraph(Protocol):
    """Follow edges and their counts, mutes and blocks.

    A user *sees* an author (has the author's posts in their home feed) when the user follows the
    author and does not mute them. A block removes the follow edges between its two users and
    refuses new ones, so that neither sees the other.
    """

    async def follow(self, follower: UserId, followee: UserId, event: UserFollowed) -> bool:
        """Add the edge and append ``event`` to the outbox atomically, if the edge is new.

        Returns:
            False, appending nothing, when ``follower`` already followed ``followee``.

        Raises:
            FollowBlocked: appending nothing, when either user blocks the other.
        """
        ...

    async def unfollow(self, follower: UserId, followee: UserId, event: UserUnfollowed) -> bool:
        """Remove the edge and append ``event`` to the outbox atomically, if the edge exists."""
        ...

    async def mute(self, user: UserId, author: UserId, event: UserMuted) -> bool:
        """Record that ``user`` mutes ``author`` and append ``event`` atomically, if that is new.

        Returns:
            False, appending nothing, when ``user`` already muted ``author``.
        """
        ...

    async def unmute(self, user: UserId, author: UserId, event: UserUnmuted) -> bool:
        """Forget that ``user`` mutes ``author`` and append ``event`` atomically, if ``user`` did."""
        ...

    async def block(
        self, blocker: UserId, blocked: UserId, unfollows: Sequence[UserUnfollowed]
    ) -> list[UserUnfollowed]:
        """Record that ``blocker`` blocks ``blocked`` and remove the follow edges between them both
        ways, atomically, and with no follow between them slipping in. ``unfollows`` holds an event
        for each edge; the event of each edge that stood is appended to the outbox.

        Returns:
            The events appended: none when no edge stood (blocking again changes nothing).
        """
        ...

    async def unblock(self, blocker: UserId, blocked: UserId) -> bool:
        """Forget that ``blocker`` blocks ``blocked``; False when it did not. No edge comes back."""
        ...

    async def is_following(self, follower: UserId, followee: UserId) -> bool: ...

    async def seen_among(self, user: UserId, candidates: Collection[UserId]) -> set[UserId]:
        """The members of ``candidates`` that ``user`` sees now: follows and does not mute."""
        ...

    async def seen(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        """Whom ``user`` sees (follows and does not mute), in ascending id order, strictly after ``after``."""
        ...

    async def audience(self, author: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        """Who sees ``author`` (follows and does not mute them), in ascending id order, strictly
        after ``after``: the followers whose feeds ``author``'s posts go into."""
        ...

    async def followers(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        """Who follows ``user``, in ascending id order, strictly after ``after``."""
        ...

    async def following(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        """Whom ``user`` follows, in ascending id order, strictly after ``after``."""
        ...

    async def counts(self, user: UserId) -> FollowCounts: ...


class FeedReader(Protocol):
    """Read access to the materialised home feeds."""

    async def entries(self, user: UserId, *, before: PostId | None, floor: PostId, limit: int) -> list[PostId]:
        """Post ids in ``user``'s materialised feed with ``floor <= id < before``, newest first."""
        ...

    async def horizon(self, user: UserId) -> PostId:
        """The id above which ``user``'s materialised feed is complete.

        The feed holds every fanned-out post of the authors ``user`` sees with ``id >= horizon``; older
        posts may be missing (backfill limit, trimmed history) and are read from timelines.
        """
        ...


class FeedStore(FeedReader, Protocol):
    """Materialised home feeds: a cache of each feed's head, kept by the processor."""

    async def add(self, users: Sequence[UserId], post_id: PostId, author_id: UserId) -> None:
        """Put one post into the feeds of ``users``; a post already there stays once."""
        ...

    async def add_to_audience(
        self, author_id: UserId, post_id: PostId, *, after: UserId | None, limit: int
    ) -> list[UserId] | None:
        """Put one of ``author_id``'s posts into the feeds of the next ``limit`` users of their
        audience (followers who do not mute them) as the graph stands, in ascending id order
        strictly after ``after``, and with the first chunk (``after`` None) into the author's own;
        returns those followers, or None, writing nothing, when the store knows the post deleted.

        The same as reading ``SocialGraph.audience`` and passing it, and the author, to
        :meth:`add`, with no round trip of the followers between the graph and the store where
        they live together.
        """
        ...

    async def add_to_audiences(
        self, posts: Sequence[tuple[PostId, UserId]], *, limit: int
    ) -> dict[PostId, list[UserId]]:
        """For each (post, author): :meth:`add_to_audience` of its first chunk (``after`` None),
        all of them at once; returns each post's followers so written, and leaves out the posts the
        store knows deleted. A batch of posts with small audiences costs about what one post does.
        """
        ...

    async def remove_post(self, post_id: PostId) -> list[UserId]:
        """Take a post out of every feed; returns whose feeds held it."""
        ...

    async def backfill(self, user: UserId, posts: Sequence[Post], *, horizon: PostId) -> None:
        """Put ``posts`` into ``user``'s feed and raise its horizon to at least ``horizon``."""
        ...

    async def purge_author(self, user: UserId, author: UserId) -> None:
        """Take every post of ``author`` out of ``user``'s feed."""
        ...


class IdempotencyLedger(Protocol):
    """Which events each consumer has already applied."""

    async def applied(self, consumer: str, event_ids: Collection[str]) -> set[str]:
        """Those of ``event_ids`` that ``consumer`` has applied."""
        ...

    async def mark(self, consumer: str, event_ids: Collection[str]) -> None:
        """Record ``event_ids`` as applied by ``consumer``; marking twice is harmless."""
        ...


class FeedTransaction(Protocol):
    """One atomic unit of processor work: events' feed effects and their ledger marks."""

    @property
    def feeds(self) -> FeedStore: ...

    @property
    def ledger(self) -> IdempotencyLedger: ...

    async def commit(self) -> None:
        """Make every write of this transaction durable at once; without it, none is."""
        ...


class FeedUnitOfWork(Protocol):
    def begin(self) -> AbstractAsyncContextManager[FeedTransaction]:
        """Open a transaction; leaving the block without :meth:`FeedTransaction.commit` discards it."""
        ...


class CachedFeed(msgspec.Struct, frozen=True, kw_only=True):
    """A slice of a cached window, newest first."""

    entries: list[PostId]
    #: The window holds every entry of what it copies with ``id >= horizon``.
    horizon: PostId


class FeedView(msgspec.Struct, frozen=True, kw_only=True):
    """What the feed cache holds for one user, as one read finds it."""

    #: The rendered page asked for, when one is kept; nothing else is read then.
    page: bytes | None = None
    #: The cached window's slice asked for; None when the user's feed is not cached.
    window: CachedFeed | None = None
    #: The celebrities the user sees, as kept for the celebrity set asked about; None when not kept.
    celebrities: frozenset[UserId] | None = None
    #: Handed back to :meth:`FeedCache.keep_page`: a page is kept only if the feed has not changed
    #: since this read.
    stamp: str = ""


class FeedCache(Protocol):
    """The feed cache: a bounded, fast copy of the newest entries of active users' materialised
    feeds, with what a read of each needs beside it (all of it one user's, stored together).

    Beside each window it keeps which celebrities the user sees (so that a read need not ask the
    graph each time; kept per version of the set of celebrities it was worked out from), and rendered
    first pages. Every change to a window (:meth:`add`, :meth:`remove`, :meth:`finish_fill`,
    :meth:`drop`) drops the user's rendered pages, and so does :meth:`drop_pages`.
    """

    async def view(
        self,
        user: UserId,
        *,
        before: PostId | None,
        limit: int,
        page: str | None = None,
        celebrities: str | None = None,
    ) -> FeedView:
        """The rendered page kept under ``page`` when one is, and nothing else. Otherwise the
        window's ids with ``horizon <= id < before``, newest first; the celebrities kept for the set
        ``celebrities`` names (when given); and, when ``page`` is given and the feed is cached, a
        stamp to keep a page with. A read past a kept page renews the feed's time to live."""
        ...

    async def begin_fill(self, user: UserId) -> None:
        """Begin filling ``user``'s feed, before reading what to fill it with from the store: a
        change that reaches the feed from now on (:meth:`add`, :meth:`remove`, :meth:`drop`) makes
        :meth:`finish_fill` keep nothing. Nothing is begun when the feed is cached already."""
        ...

    async def finish_fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        """Cache the feed begun by :meth:`begin_fill`, unless a change reached it since (or another
        fill finished first); returns whether it was filled. ``entries`` are every materialised id
        ``>= horizon``, newest first; the newest within the window are kept."""
        ...

    async def add(self, additions: Mapping[PostId, Sequence[UserId]]) -> None:
        """Add each post to the feeds of its users that are cached, keeping each within the window."""
        ...

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        """Remove a post from those of ``users`` that are cached."""
        ...

    async def drop(self, user: UserId) -> None:
        """Forget ``user``'s cached feed, the celebrities kept as seen by ``user`` and the rendered
        pages; the next read rebuilds them."""
        ...

    async def keep_celebrities(self, user: UserId, *, celebrities: str, seen: Collection[UserId]) -> None:
        """Keep ``seen`` as the celebrities ``user`` sees, worked out for the set ``celebrities`` names."""
        ...

    async def keep_page(self, user: UserId, *, page: str, rendered: bytes, stamp: str) -> None:
        """Keep ``rendered`` under ``page`` for ``user``, unless the feed changed (or any page of it
        was dropped) since the :meth:`view` that gave ``stamp``."""
        ...

    async def drop_pages(self, users: Sequence[UserId]) -> None:
        """Drop the rendered pages of ``users``, cached or not."""
        ...


class CelebrityWindows(Protocol):
    """The same kind of window as the feed cache's, over each celebrity's posts that were not
    fanned out, which reads merge into the feeds of those who follow them."""

    async def read(self, authors: Collection[UserId], *, before: PostId | None, limit: int) -> dict[UserId, CachedFeed]:
        """Each cached author's window below ``before``, newest first; authors not cached are absent."""
        ...

    async def begin_fill(self, author: UserId) -> None:
        """As :meth:`FeedCache.begin_fill`, for ``author``'s window."""
        ...

    async def finish_fill(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        """As :meth:`FeedCache.finish_fill`, for ``author``'s window: ``entries`` are all of
        ``author``'s unfanned post ids ``>= horizon``."""
        ...

    async def add(self, author: UserId, post_id: PostId) -> None:
        """Add an unfanned post to its author's window, when that window is cached."""
        ...

    async def remove(self, author: UserId, post_id: PostId) -> None:
        """Remove a post from its author's window, when that window is cached."""
        ...

    async def drop(self, author: UserId) -> None:
        """Forget ``author``'s window; the next read rebuilds it."""
        ...


class PostBodies(Protocol):
    """Post bodies, so that a page is hydrated without the post store. A post is immutable but for
    its deletion, which is remembered: a body is never cached again after it."""

    async def get(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        """The cached among ``post_ids``: the post, or None when it is known deleted."""
        ...

    async def keep(self, posts: Sequence[Post]) -> None:
        """Cache these bodies, except those of posts known deleted."""
        ...

    async def bury(self, post_id: PostId) -> None:
        """Remember ``post_id`` as deleted: its body is dropped and never cached again."""
        ...


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event as a consumer received it, with where it stands in its partition."""

    event: Event
    partition: int
    offset: int


class EventBus(Protocol):
    """Publishes events and hands them to a consumer group, at least once."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events``; returns once the bus has accepted all of them durably."""
        ...

    async def receive(self, *, max_events: int, max_wait: float) -> list[Delivery]:
        """The next deliveries, waiting up to ``max_wait`` seconds for the first one."""
        ...

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        """Mark ``deliveries`` consumed; uncommitted ones are delivered again after a restart."""
        ...


class Removal(msgspec.Struct, frozen=True, kw_only=True):
    """Posts that left home feeds: one deleted post, or an unfollowed author's posts in one feed."""

    author: UserId
    #: The deleted post; None: every post of ``author`` left the feeds of ``users`` (an unfollow).
    post_id: PostId | None = None
    #: Whose materialised feeds it left. A celebrity's post, merged in at read time, leaves none:
    #: it is gone from the feed of whoever sees that author.
    users: list[UserId] = []


class FeedsChanged(msgspec.Struct, frozen=True, kw_only=True):
    """What one batch of applied events changed in home feeds: who should read their feed again."""

    #: Whose materialised feeds gained entries.
    grown: list[UserId] = []
    #: Celebrities who published: their posts reach the feeds of whoever sees them at read time.
    merged: list[UserId] = []
    #: Who followed or unfollowed someone: which celebrities they see may have changed.
    regraphed: list[UserId] = []
    removals: list[Removal] = []

    def __bool__(self) -> bool:
        return bool(self.grown or self.merged or self.regraphed or self.removals)


class FeedChanges(Protocol):
    """Announcements of what batches of events changed in home feeds, from the processes that apply
    events to every process that streams feeds live. They are wake-up calls, not the truth (the
    feeds are): best effort, each at most once."""

    async def announce(self, change: FeedsChanged) -> None:
        """Tell every listener, in every process, about ``change``; never raises (an announcement
        that cannot be made is dropped: listeners learn of the next one)."""
        ...

    def listen(self) -> AsyncIterator[FeedsChanged | None]:
        """Every announcement from now on, until the iterator is closed. None first, and again
        whenever announcements may have been missed (a connection lost and opened again): every
        feed the listener follows may have changed meanwhile."""
        ...


# --- what the services around the core use: the HTTP API and the background loops --------------


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> float:
        """Take one token of ``key``'s; returns 0 when granted, else the seconds until one is."""
        ...


class Health(Protocol):
    async def ready(self) -> bool:
        """Whether every dependency answers."""
        ...


class Retention(Protocol):
    async def prune(self) -> dict[str, int]:
        """Delete expired rows (Idempotency-Keys, ledger marks); returns how many went, per table."""
        ...


class Telemetry(Protocol):
    """What the core reports as it works, for metrics. Every method is cheap and never fails."""

    def post_published(self, *, replayed: bool) -> None:
        """A post was published, or a request repeated under its Idempotency-Key was answered."""
        ...

    def cache_lookups(self, kind: str, *, hits: int, misses: int) -> None:
        """Cache lookups: ``kind`` is "page" (a rendered first page), "feed", "celebrity" or "post"."""
        ...

    def cache_rebuilt(self, kind: str) -> None:
        """A cold ``kind`` ("feed" or "celebrity") window was rebuilt from the store."""
        ...

    def fanned_out(self, *, entries: int, seconds: float) -> None:
        """One post was written into ``entries`` feeds in the store, taking ``seconds``."""
        ...

    def reached_feeds(self, post: Post) -> None:
        """``post`` is now in its audience's feeds (store and cache): the end of its journey."""
        ...

    def events_applied(self, events: Sequence[Event], fresh: Sequence[Event]) -> None:
        """A batch was applied: ``fresh`` are those of ``events`` not applied before."""
        ...


class NoTelemetry:
    """Telemetry that goes nowhere: the default of every use case."""

    def post_published(self, *, replayed: bool) -> None:
        pass

    def cache_lookups(self, kind: str, *, hits: int, misses: int) -> None:
        pass

    def cache_rebuilt(self, kind: str) -> None:
        pass

    def fanned_out(self, *, entries: int, seconds: float) -> None:
        pass

    def reached_feeds(self, post: Post) -> None:
        pass

    def events_applied(self, events: Sequence[Event], fresh: Sequence[Event]) -> None:
        pass


NO_TELEMETRY: Final = NoTelemetry()
