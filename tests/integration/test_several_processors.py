"""Several processors in one consumer group while posts flow: they share the partitions, one is
killed with ``kill -9`` and another added mid-run, and afterwards every feed, paged to its end at
random page sizes, is exactly what the API acknowledged: each post once, newest first."""

from __future__ import annotations

import random
import signal
import threading
from pathlib import Path

import httpx

from tests.integration.stack import Process, Stack, free_port, isolated_stack, scrape, wait_until

USERS = [f"member-{number:02d}" for number in range(12)]
#: Each user follows the next four (in a ring), so every post reaches five feeds.
FOLLOWING = 4
POSTS_A_PHASE = 40


def followed_by(user: str) -> list[str]:
    at = USERS.index(user)
    return [USERS[(at + step) % len(USERS)] for step in range(1, FOLLOWING + 1)]


def partitions_of(processor: Process, port: int) -> set[str]:
    """The partitions this member has been given (its lag is reported per assigned partition)."""
    if processor.popen.poll() is not None:
        raise AssertionError(f"a processor exited:\n{processor.output()}")
    try:
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
    except httpx.TransportError:  # not serving yet
        return set()
    return {name.split('"')[1] for name in metrics if name.startswith("feedcore_consumer_lag{")}


def post_a_phase(stack: Stack, draw: random.Random, posted: dict[str, list[str]], *, halfway: threading.Event) -> None:
    for number in range(POSTS_A_PHASE):
        author = draw.choice(USERS)
        with stack.client(author) as client:
            created = client.post("/posts", json={"content": f"a post of {author}, #{number}"})
        assert created.status_code == 201, created.text
        posted[author].append(created.json()["id"])
        if number == POSTS_A_PHASE // 2:
            halfway.set()


def whole_feed(stack: Stack, user: str, draw: random.Random) -> list[str]:
    ids: list[str] = []
    cursor = None
    with stack.client(user) as client:
        while True:
            params: dict[str, str | int] = {"limit": draw.randint(1, 7)}
            if cursor is not None:
                params["cursor"] = cursor
            page = client.get(f"/feeds/{user}", params=params)
            assert page.status_code == 200, page.text
            ids += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return ids


def test_members_share_the_partitions_and_one_killed_and_one_added_change_no_feed(tmp_path: Path) -> None:
    draw = random.Random(15)  # noqa: S311  # a seeded draw of authors and page sizes, not a secret
    with isolated_stack(tmp_path) as stack:
        stack.serve()
        for user in USERS:
            with stack.client(user) as client:
                for followee in followed_by(user):
                    assert client.post("/follow", json={"followee_id": followee}).status_code == 204
        ports = [free_port() for _ in range(3)]
        first, second = (stack.spawn("process", FEEDCORE_METRICS_PORT=str(port)) for port in ports[:2])
        wait_until(
            lambda: partitions_of(first, ports[0]) and partitions_of(second, ports[1]),
            timeout=60,
            what="both members to be given partitions",
        )
        every = {str(n) for n in range(int(stack.settings["FEEDCORE_KAFKA_PARTITIONS"]))}
        assert partitions_of(first, ports[0]) | partitions_of(second, ports[1]) == every

        posted: dict[str, list[str]] = {user: [] for user in USERS}
        halfway = threading.Event()
        posting = threading.Thread(target=post_a_phase, args=(stack, draw, posted), kwargs={"halfway": halfway})
        posting.start()
        halfway.wait(timeout=60)
        first.stop(signal.SIGKILL)  # in the middle of the flow, its batch uncommitted
        posting.join(timeout=120)
        third = stack.spawn("process", FEEDCORE_METRICS_PORT=str(ports[2]))
        wait_until(lambda: partitions_of(third, ports[2]), timeout=60, what="the added member to be given partitions")
        post_a_phase(stack, draw, posted, halfway=threading.Event())

        def expected(user: str) -> list[str]:
            own_and_followed = [post for author in [user, *followed_by(user)] for post in posted[author]]
            return sorted(own_and_followed, key=int, reverse=True)

        wait_until(
            lambda: all(
                stack.scalar("SELECT count(*) FROM feed_entries WHERE user_id = %s", user) >= len(expected(user))
                for user in USERS
            ),
            timeout=120,
            what="every post in every feed",
        )
        for user in USERS:
            assert whole_feed(stack, user, draw) == expected(user), user
        assert stack.scalar("SELECT count(*) FROM feed_entries") == sum(len(expected(user)) for user in USERS)
        for processor in (second, third):
            assert processor.stop(signal.SIGTERM) == 0, processor.output()
