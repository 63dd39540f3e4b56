"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from entrypoints.auth import token_secret
from entrypoints.container import EmbeddedContainer, Services, embedded_container
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.routes import ROUTES
from entrypoints.settings import Settings
from entrypoints.worker import run_embedded_worker

_log = logging.getLogger(__name__)

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def create_app(services: Services, *, max_body_bytes: int, lifespan: list[Lifespan] | None = None) -> Litestar:
    return Litestar(
        route_handlers=ROUTES,
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]  # handlers narrow the exception type
        request_max_body_size=max_body_bytes,
        lifespan=lifespan or [],
        openapi_config=OpenAPIConfig(
            title="feedcore",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
        ),
    )


def create_embedded_app(settings: Settings | None = None) -> Litestar:
    """The API and the fan-out worker in one process, on the in-memory adapters."""
    settings = settings or Settings.from_env()
    container = embedded_container(settings, token_secret(settings, create=True))
    return create_app(
        container.services(), max_body_bytes=settings.max_body_bytes, lifespan=[_embedded_worker(container)]
    )


def _embedded_worker(container: EmbeddedContainer) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_embedded_worker(container.outbox(), container.bus(), container.processor(), stop)
        )
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(worker, timeout=5)

    return lifespan
