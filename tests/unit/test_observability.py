"""Metrics and request ids of the HTTP API, embedded: each family moves when its event happens."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from feedcore.entrypoints.container import embedded_container
from feedcore.entrypoints.http.app import create_app, create_service_app
from feedcore.entrypoints.logs import EVENT_ID, REQUEST_ID, ContextFilter, Repeats, logging_config
from tests.prometheus import Scrape, parse
from tests.unit.http.api import SECRET, Api, make_settings


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with TestClient(create_service_app(make_settings(tmp_path))) as client:
        yield Api(client)


def samples(api: Api | TestClient[Litestar]) -> Scrape:
    return parse(api.request("GET", "/metrics").text)


def test_a_post_moves_the_posts_counter_and_after_fan_out_the_end_to_end_histogram(api: Api) -> None:
    api.follow("ana", "bo")
    before = samples(api)
    post = api.publish("bo", "hello")
    api.wait_for_feed("ana", [post])
    # The processor reports once its whole batch is through (store and cache), a moment after the
    # post shows in the feed.
    count = "feedcore_post_to_feed_seconds_count"
    for _ in range(100):
        after = samples(api)
        if after.get(count, 0) > before.get(count, 0):
            break
        time.sleep(0.02)

    assert after["feedcore_posts_created_total"] == before["feedcore_posts_created_total"] + 1
    assert after["feedcore_post_to_feed_seconds_count"] == before.get("feedcore_post_to_feed_seconds_count", 0) + 1
    assert after["feedcore_fanout_entries_total"] >= 2  # bo's own feed and ana's
    applied = 'feedcore_events_processed_total{outcome="applied",type="post_published"}'
    assert after[applied] == before.get(applied, 0) + 1
    assert after['feedcore_http_requests_total{method="POST",route="/posts",status="201"}'] == 1
    assert after['feedcore_http_request_duration_seconds_count{method="POST",route="/posts"}'] == 1
    assert after['feedcore_cache_lookups_total{kind="feed",result="miss"}'] >= 1
    assert after['feedcore_cache_rebuilds_total{kind="feed"}'] >= 1


def test_a_repeated_keyed_post_counts_as_a_replay_not_a_post(api: Api) -> None:
    keyed = {"Idempotency-Key": "k-1"}
    for _ in range(2):
        response = api.request("POST", "/posts", user="ana", body={"content": "once"}, headers=keyed)
        assert response.status_code == 201

    found = samples(api)
    assert found["feedcore_posts_created_total"] == 1
    assert found["feedcore_idempotent_replays_total"] == 1


def test_refusals_are_counted_by_route_template_and_status(api: Api) -> None:
    assert api.request("GET", "/feeds/ana").status_code == 401
    assert api.request("GET", "/posts/1").status_code == 404

    found = samples(api)
    assert found['feedcore_http_requests_total{method="GET",route="/feeds/{user_id}",status="401"}'] == 1
    assert found['feedcore_http_requests_total{method="GET",route="/posts/{post_id}",status="404"}'] == 1


def test_every_response_carries_a_request_id_and_keeps_the_client_s(api: Api) -> None:
    made = api.request("GET", "/healthz").headers["x-request-id"]
    other = api.request("GET", "/healthz").headers["x-request-id"]
    kept = api.request("GET", "/healthz", headers={"X-Request-ID": "client-42"}).headers["x-request-id"]
    replaced = api.request("GET", "/healthz", headers={"X-Request-ID": "no spaces, please"}).headers["x-request-id"]

    assert len(made) == 32
    assert made != other
    assert kept == "client-42"
    assert replaced not in ("no spaces, please", made)


class Unreachable(Exception):
    """Stands for PostgreSQL being away."""


def test_a_store_outage_answers_503_and_counts_a_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    services = embedded_container(settings, SECRET).services()

    async def away(*_: object, **__: object) -> None:
        raise Unreachable

    monkeypatch.setattr(services.posts, "profile", away)
    app = create_app(services, max_body_bytes=1_000, metrics=services.metrics, unavailable_errors=(Unreachable,))
    with TestClient(app) as client:
        assert client.get("/users/ana").status_code == 503
        found = samples(client)

    assert found['feedcore_fallbacks_total{dependency="postgres",operation="request"}'] == 1
    assert found['feedcore_http_requests_total{method="GET",route="/users/{user_id}",status="503"}'] == 1


def test_log_lines_are_json_in_real_mode_and_readable_embedded(tmp_path: Path) -> None:
    embedded = logging_config(make_settings(tmp_path))
    real = logging_config(make_settings(tmp_path, database_url="postgresql://localhost/feedcore", log_level="DEBUG"))
    forced = logging_config(make_settings(tmp_path, log_format="json"))

    assert "format" in embedded["formatters"]["feedcore"]
    assert real["formatters"]["feedcore"]["()"] == "pythonjsonlogger.json.JsonFormatter"
    assert forced["formatters"]["feedcore"]["()"] == "pythonjsonlogger.json.JsonFormatter"
    assert real["root"]["level"] == "DEBUG"


def test_a_log_record_carries_the_request_and_event_ids_in_force() -> None:
    record = logging.LogRecord("feedcore", logging.INFO, __file__, 1, "applied", None, None)
    token = REQUEST_ID.set("r-1")
    event = EVENT_ID.set("e-2")
    try:
        assert ContextFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
        EVENT_ID.reset(event)

    assert (getattr(record, "request_id", None), getattr(record, "event_id", None)) == ("r-1", "e-2")
    assert getattr(record, "context", None) == " [request=r-1 event=e-2]"


def test_a_library_s_repeated_message_passes_once_in_a_while_with_its_count_and_ours_always() -> None:
    now = [0.0]
    repeats = Repeats(every=10.0, clock=lambda: now[0])

    def said(logger: str, at: float, *args: object) -> logging.LogRecord | None:
        now[0] = at
        template = "Unable connect to node with id %s: %s"
        record = logging.LogRecord(logger, logging.ERROR, __file__, 1, template, args, None)
        return record if repeats.filter(record) else None

    first = said("aiokafka", 0.0, 1, "refused")
    assert first is not None
    assert first.getMessage() == "Unable connect to node with id 1: refused"
    assert [said("aiokafka", at, 1, "closed") for at in (0.1, 5.0, 9.9)] == [None, None, None]
    later = said("aiokafka", 12.0, 1, "refused")
    assert later is not None
    assert later.getMessage() == "Unable connect to node with id 1: refused (and 3 more like it in the 12 s before)"
    assert said("aiokafka", 12.5, 1, "refused") is None
    # Another logger's, and feedcore's own, are counted apart or not at all.
    assert said("psycopg.pool", 12.5, 1, "refused") is not None
    assert all(said("feedcore.entrypoints.consumer", 12.5 + step, 1, "refused") is not None for step in range(5))
