"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.exceptions import ClientException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from entrypoints.auth import token_secret
from entrypoints.container import EmbeddedContainer, Services, embedded_container
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.routes import ROUTES, reject_unknown_query
from entrypoints.http.schemas import REQUEST_BODIES
from entrypoints.settings import Settings
from entrypoints.worker import run_embedded_worker

_log = logging.getLogger(__name__)

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


class _Request(Request[Any, Any, Any]):
    async def json(self) -> Any:  # a JSON document is any value
        # Litestar turns msgspec's DecodeError into a 400, but not the errors msgspec raises for
        # invalid UTF-8 inside a string or for nesting deeper than it recurses.
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError) as error:
            raise ClientException(f"the body is not valid JSON: {type(error).__name__}") from None


def create_app(services: Services, *, max_body_bytes: int, lifespan: list[Lifespan] | None = None) -> Litestar:
    app = Litestar(
        route_handlers=ROUTES,
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]  # handlers narrow the exception type
        request_max_body_size=max_body_bytes,
        before_request=reject_unknown_query,
        request_class=_Request,
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
    _declare_closed_bodies(app)
    return app


def _declare_closed_bodies(app: Litestar) -> None:
    """Say in the schema what the decoder does: request bodies reject unknown fields.

    Litestar's schema of a msgspec Struct leaves out ``forbid_unknown_fields``; without it the
    document would promise that extra fields are accepted.
    """
    schemas = (app.openapi_schema.components.schemas or {}) if app.openapi_schema.components else {}
    for body in REQUEST_BODIES:
        if body.__struct_config__.forbid_unknown_fields and body.__name__ in schemas:
            schemas[body.__name__].additional_properties = False


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
