"""Every route of the contract, answering as documented."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from tests.unit.http.api import (
    Api,
    Serve,
    assert_post,
    assert_problem,
    newest_first,
)


def test_publishing_returns_the_post_with_its_id_as_a_decimal_string(api: Api) -> None:
    response = api.request("POST", "/posts", user="ana", body={"content": "hello, feed"})

    assert response.status_code == HTTPStatus.CREATED
    assert response.headers["content-type"].startswith("application/json")
    assert_post(response.json(), author="ana", content="hello, feed")


def test_a_post_reads_back_as_it_was_published(api: Api) -> None:
    created = api.publish("ana", "hello, feed")

    assert api.get(f"/posts/{created['id']}") == created
    assert api.profile("ana")["posts"] == 1


@pytest.mark.parametrize("content", ["a", "a" * 5_000, "é" * 5_000, "🙂" * 5_000], ids=["1", "5000", "é", "emoji"])
def test_content_of_1_to_5000_characters_is_accepted(api: Api, content: str) -> None:
    created = api.publish("ana", content)

    assert_post(created, author="ana", content=content)
    assert api.get(f"/posts/{created['id']}")["content"] == content


def test_the_author_deletes_a_post_and_it_is_gone(api: Api) -> None:
    kept, deleted = api.publish("ana", "kept"), api.publish("ana", "deleted")

    api.delete("ana", deleted["id"])

    assert_problem(api.request("GET", f"/posts/{deleted['id']}"), HTTPStatus.NOT_FOUND, code="post_not_found")
    assert_problem(
        api.request("DELETE", f"/posts/{deleted['id']}", user="ana"), HTTPStatus.NOT_FOUND, code="post_not_found"
    )
    assert api.get(f"/posts/{kept['id']}") == kept
    assert api.profile("ana")["posts"] == 1
    assert api.collect("/users/ana/posts", limit=100) == [kept]


def test_following_is_idempotent(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("ana", "bo")

    assert api.profile("ana") == {"user_id": "ana", "followers": 0, "following": 1, "posts": 0}
    assert api.profile("bo") == {"user_id": "bo", "followers": 1, "following": 0, "posts": 0}
    assert api.get("/users/bo/followers") == {"items": ["ana"], "next_cursor": None}
    assert api.get("/users/ana/following") == {"items": ["bo"], "next_cursor": None}


def test_unfollowing_is_idempotent(api: Api) -> None:
    api.follow("ana", "bo")

    api.unfollow("ana", "bo")
    api.unfollow("ana", "bo")
    api.unfollow("ana", "never-followed")

    assert api.profile("ana") == {"user_id": "ana", "followers": 0, "following": 0, "posts": 0}
    assert api.profile("bo") == {"user_id": "bo", "followers": 0, "following": 0, "posts": 0}
    assert api.get("/users/bo/followers") == {"items": [], "next_cursor": None}
    assert api.get("/users/ana/following") == {"items": [], "next_cursor": None}


def test_the_feed_shows_a_followed_authors_post_after_fan_out(api: Api) -> None:
    api.follow("ana", "bo")
    post = api.publish("bo", "hello, feed")

    assert api.wait_for_feed("ana", [post]) == [post]
    assert api.get("/feeds/ana", user="ana") == {"items": [post], "next_cursor": None}


def test_a_delete_and_an_unfollow_show_in_the_feed_at_once(api: Api) -> None:
    api.follow("ana", "bo")
    kept, deleted = api.publish("bo", "kept"), api.publish("bo", "deleted")
    assert api.wait_for_feed("ana", [deleted, kept]) == [deleted, kept]

    api.delete("bo", deleted["id"])
    assert api.feed("ana") == [kept]

    api.unfollow("ana", "bo")
    assert api.feed("ana") == []


def test_a_mute_hides_an_author_at_once_and_an_unmute_shows_all_their_posts_again(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("ana", "cy")
    bo_posts = [api.publish("bo", f"bo {n}") for n in range(3)]
    cy_post = api.publish("cy", "cy")
    everything = newest_first([*bo_posts, cy_post])
    assert api.wait_for_feed("ana", everything) == everything
    assert api.feed("ana") == everything  # read again: the rendered first page is kept

    api.mute("ana", "bo")
    assert api.feed("ana") == [cy_post]
    muted_post = api.publish("bo", "while muted")
    later = api.publish("cy", "later")
    assert api.wait_for_feed("ana", [later, cy_post]) == [later, cy_post]
    assert api.get("/users/bo/posts")["items"][0] == muted_post

    api.unmute("ana", "bo")
    everything = newest_first([*bo_posts, muted_post, cy_post, later])
    assert api.wait_for_feed("ana", everything) == everything
    assert api.collect("/feeds/ana", user="ana", limit=2) == everything


def test_muting_is_idempotent_and_tells_the_muted_user_nothing(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("bo", "ana")
    bo_post = api.publish("bo", "hidden from ana")
    assert api.wait_for_feed("ana", [bo_post]) == [bo_post]
    before = api.world("ana", "bo")

    api.mute("ana", "bo")
    api.mute("ana", "bo")
    api.mute("ana", "never-followed")
    api.unmute("ana", "cy")  # never muted
    assert api.feed("ana") == []
    ana_post = api.publish("ana", "still seen by bo")
    assert api.wait_for_feed("bo", [ana_post, bo_post]) == [ana_post, bo_post]

    after = api.world("ana", "bo")
    assert after["bo"] == before["bo"]  # bo's follows, lists and counts as they were
    assert after["ana"]["following"] == before["ana"]["following"]
    api.unmute("ana", "bo")
    api.unmute("ana", "bo")
    assert api.wait_for_feed("ana", [ana_post, bo_post]) == [ana_post, bo_post]


def test_a_mute_hides_an_author_whose_posts_are_merged_at_read_time(serve: Serve) -> None:
    api = serve(celebrity_threshold=1)
    for fan in ("ana", "cy"):
        api.follow(fan, "bo")
    merged = api.publish("bo", "past the threshold: merged at read time")
    own = api.publish("ana", "mine")
    assert api.wait_for_feed("ana", [own, merged]) == [own, merged]
    assert api.feed("ana") == [own, merged]

    api.mute("ana", "bo")
    assert api.feed("ana") == [own]
    assert api.feed("cy") == [merged]

    api.unmute("ana", "bo")
    assert api.feed("ana") == [own, merged]


def test_a_block_removes_both_follows_at_once_and_refuses_new_ones(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("bo", "ana")
    api.follow("ana", "cy")
    ana_post, bo_post, cy_post = api.publish("ana", "a"), api.publish("bo", "b"), api.publish("cy", "c")
    assert api.wait_for_feed("ana", [cy_post, bo_post, ana_post]) == [cy_post, bo_post, ana_post]
    assert api.wait_for_feed("bo", [bo_post, ana_post]) == [bo_post, ana_post]

    api.block("ana", "bo")
    assert api.feed("ana") == [cy_post, ana_post]
    assert api.feed("bo") == [bo_post]
    assert api.profile("ana") == {"user_id": "ana", "followers": 0, "following": 1, "posts": 1}
    assert api.profile("bo") == {"user_id": "bo", "followers": 0, "following": 0, "posts": 1}
    for follower, followee in [("ana", "bo"), ("bo", "ana")]:
        response = api.request("POST", "/follow", user=follower, body={"followee_id": followee})
        assert_problem(response, HTTPStatus.FORBIDDEN, code="follow_blocked")
    api.block("ana", "bo")  # again: nothing changes
    assert api.get("/users/bo/followers") == {"items": [], "next_cursor": None}

    api.unblock("ana", "bo")
    api.unblock("ana", "bo")
    assert api.get("/users/ana/following") == {"items": ["cy"], "next_cursor": None}  # nothing comes back
    assert api.feed("ana") == [cy_post, ana_post]
    api.follow("bo", "ana")
    assert api.wait_for_feed("bo", [bo_post, ana_post]) == [bo_post, ana_post]


def test_a_block_by_either_user_refuses_a_follow_until_its_blocker_lifts_it(api: Api) -> None:
    api.block("bo", "ana")

    response = api.request("POST", "/follow", user="ana", body={"followee_id": "bo"})
    assert_problem(response, HTTPStatus.FORBIDDEN, code="follow_blocked")
    api.unblock("ana", "bo")  # ana blocks no one: changes nothing
    response = api.request("POST", "/follow", user="ana", body={"followee_id": "bo"})
    assert_problem(response, HTTPStatus.FORBIDDEN, code="follow_blocked")
    assert api.profile("bo")["followers"] == 0

    api.unblock("bo", "ana")
    api.follow("ana", "bo")
    assert api.profile("bo")["followers"] == 1


def test_paging_the_feed_at_any_size_reproduces_the_whole_feed(api: Api) -> None:
    api.follow("ana", "bo")
    posts = [api.publish("bo", f"bo {n}") for n in range(4)]
    posts += [api.publish("cy", f"cy {n}") for n in range(3)]
    api.follow("ana", "cy")  # after cy's posts: they reach the feed by backfill
    posts += [api.publish("ana", f"ana {n}") for n in range(2)]
    api.publish("dee", "not followed")
    whole = newest_first(posts)

    assert api.wait_for_feed("ana", whole) == whole
    for limit in (1, 2, 3, 4, 9, 100):
        assert api.collect("/feeds/ana", user="ana", limit=limit) == whole, f"limit={limit}"
    first = api.get("/feeds/ana", user="ana", params={"limit": 4})
    assert first["items"] == whole[:4]
    assert isinstance(first["next_cursor"], str)


def test_the_feed_is_twenty_posts_a_page_by_default(api: Api) -> None:
    posts = newest_first(api.publish("ana", f"post {n}") for n in range(21))
    assert api.wait_for_feed("ana", posts) == posts  # fan-out reaches even the author's own feed later

    page = api.get("/feeds/ana", user="ana")

    assert page["items"] == posts[:20]
    assert api.get("/feeds/ana", user="ana", params={"cursor": page["next_cursor"]}) == {
        "items": posts[20:],
        "next_cursor": None,
    }


def test_a_profile_counts_followers_following_and_posts(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("ana", "cy")
    api.follow("bo", "ana")
    api.publish("ana", "one")
    api.publish("ana", "two")
    api.publish("bo", "three")

    assert api.profile("ana") == {"user_id": "ana", "followers": 1, "following": 2, "posts": 2}
    assert api.profile("bo") == {"user_id": "bo", "followers": 1, "following": 1, "posts": 1}
    assert api.profile("cy") == {"user_id": "cy", "followers": 1, "following": 0, "posts": 0}
    assert api.profile("nobody") == {"user_id": "nobody", "followers": 0, "following": 0, "posts": 0}


def test_an_authors_posts_page_newest_first(api: Api) -> None:
    posts = newest_first(api.publish("ana", f"post {n}") for n in range(5))
    api.publish("bo", "someone else's")

    first = api.get("/users/ana/posts", params={"limit": 2})

    assert first["items"] == posts[:2]
    assert isinstance(first["next_cursor"], str)
    assert api.get("/users/ana/posts", params={"limit": 2, "cursor": first["next_cursor"]})["items"] == posts[2:4]
    assert api.get("/users/ana/posts") == {"items": posts, "next_cursor": None}
    for limit in (1, 2, 3, 5, 100):
        assert api.collect("/users/ana/posts", limit=limit) == posts, f"limit={limit}"
    assert api.get("/users/cy/posts") == {"items": [], "next_cursor": None}


def test_followers_and_following_page_in_id_order(api: Api) -> None:
    for follower in ("dee", "bo", "cy", "ana"):
        api.follow(follower, "eve")
    api.follow("ana", "bo")

    first = api.get("/users/eve/followers", params={"limit": 3})
    assert first["items"] == ["ana", "bo", "cy"]
    assert api.get("/users/eve/followers", params={"limit": 3, "cursor": first["next_cursor"]}) == {
        "items": ["dee"],
        "next_cursor": None,
    }
    for limit in (1, 2, 4, 100):
        assert api.collect("/users/eve/followers", limit=limit) == ["ana", "bo", "cy", "dee"]
        assert api.collect("/users/ana/following", limit=limit) == ["bo", "eve"]
    assert api.get("/users/eve/following") == {"items": [], "next_cursor": None}


def test_health_and_readiness(api: Api) -> None:
    assert api.get("/healthz") == {"status": "ok"}
    assert api.get("/readyz") == {"status": "ready"}


def test_metrics_are_prometheus_text(api: Api) -> None:
    response = api.request("GET", "/metrics")

    assert response.status_code == HTTPStatus.OK
    media_type, *parameters = (part.strip() for part in response.headers["content-type"].split(";"))
    assert media_type == "text/plain"
    assert "version=0.0.4" in parameters
    # The text exposition format: comment lines, and samples of a name and a value.
    assert all(line.startswith("#") or len(line.split()) >= 2 for line in response.text.splitlines())


def test_the_metrics_content_type_names_its_charset_once(api: Api) -> None:
    content_type = api.request("GET", "/metrics").headers["content-type"]

    parameters = [part.strip().split("=")[0].lower() for part in content_type.split(";")[1:]]
    assert parameters.count("charset") == 1, content_type


def test_the_openapi_document_is_3_1_and_lists_every_route(api: Api) -> None:
    document = api.get("/schema/openapi.json")

    assert document["openapi"].startswith("3.1")
    assert {
        "/posts",
        "/posts/{post_id}",
        "/follow",
        "/follow/{followee_id}",
        "/mutes/{user_id}",
        "/blocks/{user_id}",
        "/feeds/{user_id}",
        "/users/{user_id}",
        "/users/{user_id}/posts",
        "/users/{user_id}/followers",
        "/users/{user_id}/following",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(document["paths"])
