"""feedcore inside a script, in memory: follows, posts, a feed read page by page, a deletion and an
unfollow. Nothing to start and nothing persisted.

    python examples/embedded.py

The same calls run on PostgreSQL, Redis and Kafka with
``open_feeds(database_url=..., redis_url=..., kafka_bootstrap=...)``.
"""

from __future__ import annotations

import asyncio

from feedcore import Post
from feedcore.entrypoints.embedding import Feeds, open_feeds


async def main() -> None:
    async with open_feeds() as feeds:
        await feeds.follow("ana", "bo")
        await feeds.follow("ana", "cy")
        print("ana follows bo and cy")
        await feeds.publish("bo", "first light over the harbour")
        leaving = await feeds.publish("cy", "a post cy will delete")
        await feeds.publish("dee", "nobody ana follows")
        await feeds.publish("bo", "the ferry is late again")
        await feeds.publish("cy", "new bread recipe")
        await feeds.settled()  # the fan-out has brought every post to the feeds

        print("ana's home feed, two posts a page:")
        await show_feed(feeds, "ana", page_size=2)

        await feeds.delete("cy", leaving.id)
        await feeds.unfollow("ana", "bo")
        await feeds.settled()
        print("cy deletes a post, ana unfollows bo; ana's home feed:")
        await show_feed(feeds, "ana", page_size=20)

        for user in ("ana", "bo", "cy"):
            profile = await feeds.profile(user)
            print(f"{user}: {profile.followers} followers, {profile.following} following, {profile.posts} posts")


async def show_feed(feeds: Feeds, user: str, *, page_size: int) -> None:
    number = 0
    async for page in feeds.pages(user, limit=page_size):
        number += 1
        print(f"  page {number}: " + " | ".join(line(post) for post in page.items))


def line(post: Post) -> str:
    return f"{post.author_id}: {post.content}"


if __name__ == "__main__":
    asyncio.run(main())
