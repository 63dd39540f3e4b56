-- Posts, the outbox, Idempotency-Keys, the social graph, materialised feeds and the processor's ledger.
-- User ids are ASCII and compared byte-wise (COLLATE "C"): keyset pages of ids then follow the
-- same order in every database, whatever its locale.

CREATE TABLE posts (
    id          bigint      PRIMARY KEY,
    author_id   text COLLATE "C"        NOT NULL,
    content     text        NOT NULL,
    created_at  timestamptz NOT NULL,
    fan_out     boolean     NOT NULL,
    deleted_at  timestamptz
);
-- Author timelines and the timeline continuation of home feeds, newest first.
CREATE INDEX posts_by_author ON posts (author_id, id DESC) WHERE deleted_at IS NULL;
-- Posts merged into feeds at read time (authors above the celebrity threshold); few by design.
CREATE INDEX posts_unfanned ON posts (author_id, id DESC) WHERE deleted_at IS NULL AND NOT fan_out;

-- Events waiting for the relay; written in the transaction of the change they describe.
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    key         text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
    user_id     text COLLATE "C"        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    -- NULL while the first request with the key is in flight.
    post_id     bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE follows (
    follower_id text COLLATE "C"        NOT NULL,
    followee_id text COLLATE "C"        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_by_followee ON follows (followee_id, follower_id);

-- Counts kept in the transactions that change them, so profiles never count rows. (No CHECK >= 0:
-- PostgreSQL checks an upsert's proposed row, a negative delta, before it resolves the conflict.)
CREATE TABLE user_counts (
    user_id     text COLLATE "C"   PRIMARY KEY,
    followers   bigint NOT NULL DEFAULT 0,
    following   bigint NOT NULL DEFAULT 0,
    posts       bigint NOT NULL DEFAULT 0
);

-- Materialised home feeds. The primary key serves a page read as a backward index scan.
CREATE TABLE feed_entries (
    user_id     text COLLATE "C"   NOT NULL,
    post_id     bigint NOT NULL,
    author_id   text COLLATE "C"   NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX feed_entries_by_post ON feed_entries (post_id);

-- Below its horizon a feed may be incomplete; reads continue there from timelines.
CREATE TABLE feed_horizons (
    user_id     text COLLATE "C"   PRIMARY KEY,
    horizon     bigint NOT NULL
);

-- Which events each consumer has applied; written with the event's effects.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
