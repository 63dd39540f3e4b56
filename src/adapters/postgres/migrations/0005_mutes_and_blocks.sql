-- Mutes hide an author's posts from one user's feed; blocks remove the follows between two users
-- and refuse new ones. Neither is counted.
CREATE TABLE mutes (
    user_id     text COLLATE "C"        NOT NULL,
    muted_id    text COLLATE "C"        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, muted_id)
);
-- Fan-out leaves out an author's muters: an anti-join of the author's followers with this index.
CREATE INDEX mutes_by_muted ON mutes (muted_id, user_id);

CREATE TABLE blocks (
    blocker_id  text COLLATE "C"        NOT NULL,
    blocked_id  text COLLATE "C"        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id)
);
