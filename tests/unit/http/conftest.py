"""An app of its own for tests that change state, and a seeded one the rejection tests share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from feedcore.entrypoints.http.app import create_service_app
from tests.unit.http.api import (
    SEEDED_USERS,
    Api,
    Seeded,
    Serve,
    make_settings,
)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start embedded apps, each with its lifespan (and so its fan-out worker) running; settings as keywords."""
    with ExitStack() as stack:

        def start(**changes: Any) -> Api:
            app = create_service_app(make_settings(tmp_path, **changes))
            return Api(stack.enter_context(TestClient(app)))

        yield start


@pytest.fixture
def api(serve: Serve) -> Api:
    return serve()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    # Rate limiting is off here: the rejected writes of many tests would otherwise add up to a 429.
    settings = make_settings(tmp_path_factory.mktemp("seeded"), rate_limit_per_second=0)
    with TestClient(create_service_app(settings)) as client:
        api = Api(client)
        api.follow("ana", "bo")
        api.follow("ana", "cy")
        api.follow("bo", "ana")
        api.follow("cy", "ana")
        ana_posts = [api.publish("ana", "first by ana"), api.publish("ana", "second by ana")]
        bo_post = api.publish("bo", "by bo")
        yield Seeded(api=api, ana_posts=ana_posts, bo_post=bo_post, before=api.world(*SEEDED_USERS))
