"""Every error as an RFC 9457 problem document."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from feedcore import Conflict, FeedcoreError, Forbidden, InvalidInput, NotFound, Unavailable, Unprocessable
from feedcore.entrypoints.http.schemas import Problem

MEDIA_TYPE: Final = "application/problem+json"
_STATUS_OF: Final[tuple[tuple[type[FeedcoreError], HTTPStatus], ...]] = (
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (Forbidden, HTTPStatus.FORBIDDEN),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Conflict, HTTPStatus.CONFLICT),
    (Unprocessable, HTTPStatus.UNPROCESSABLE_ENTITY),
    (Unavailable, HTTPStatus.SERVICE_UNAVAILABLE),
)
_log = logging.getLogger(__name__)


def problem(
    status: HTTPStatus,
    *,
    detail: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
) -> Response[Problem]:
    body = Problem(
        # Domain errors name their kind; the rest are plain HTTP errors, whose title says it all.
        type=f"urn:feedcore:problem:{code}" if code else "about:blank",
        title=status.phrase,
        status=status.value,
        detail=detail,
        code=code,
        errors=errors,
    )
    return Response(body, status_code=status.value, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def status_of(error: FeedcoreError) -> HTTPStatus:
    for kind, status in _STATUS_OF:
        if isinstance(error, kind):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def on_feedcore_error(_: Request[Any, Any, Any], error: FeedcoreError) -> Response[Problem]:
    status = status_of(error)
    headers = {"Retry-After": "1"} if status == HTTPStatus.SERVICE_UNAVAILABLE else None
    return problem(status, detail=str(error), code=error.code, headers=headers)


def on_http_exception(_: Request[Any, Any, Any], error: HTTPException) -> Response[Problem]:
    status = HTTPStatus(error.status_code)
    errors = None
    if isinstance(error, ValidationException) and isinstance(error.extra, list):
        errors = [{key: str(value) for key, value in item.items()} for item in error.extra if isinstance(item, dict)]
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        _log.error("request failed: %s", error.detail)
        return problem(status)
    return problem(status, detail=error.detail or None, headers=error.headers, errors=errors)


def on_unavailable(_: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    _log.warning("a dependency is unavailable: %s", error)
    return problem(
        HTTPStatus.SERVICE_UNAVAILABLE,
        detail="a dependency is unavailable; retry shortly",
        code="unavailable",
        headers={"Retry-After": "1"},
    )


def on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    _log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS: Final[dict[int | type[Exception], Any]] = {
    FeedcoreError: on_feedcore_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
