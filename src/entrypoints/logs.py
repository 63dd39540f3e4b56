"""Logging: JSON lines in real mode, readable lines embedded, each with its request or event id.

The level comes from ``FEEDCORE_LOG_LEVEL``; the format from ``FEEDCORE_LOG_FORMAT`` (``json`` or
``text``; by default JSON when ``FEEDCORE_DATABASE_URL`` is set, text embedded).
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from typing import Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS

from entrypoints.settings import Settings

#: The id of the HTTP request being answered, where there is one.
REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("request_id", default=None)
#: The id of the event being applied or dead-lettered, where there is one.
EVENT_ID: Final[ContextVar[str | None]] = ContextVar("event_id", default=None)

_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
_JSON_FIELDS: Final = "%(levelname)s %(name)s %(message)s"


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``event_id`` to every record (None outside of one), and ``context``,
    the same as text for readable lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id, event_id = REQUEST_ID.get(), EVENT_ID.get()
        record.request_id = getattr(record, "request_id", request_id)
        record.event_id = getattr(record, "event_id", event_id)
        context = [f"{name}={value}" for name, value in (("request", request_id), ("event", event_id)) if value]
        record.context = f" [{' '.join(context)}]" if context else ""
        return True


def json_logs(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return not settings.embedded
    return settings.log_format == "json"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for this process, granian's own loggers included."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": _JSON_FIELDS,
            "timestamp": "time",  # ISO 8601, in UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
            "static_fields": {"service": "feedcore"},
            # ``context`` is the text lines' rendering of the ids, which JSON carries as fields.
            "reserved_attrs": [*RESERVED_ATTRS, "context"],
        }
        if json_logs(settings)
        else {"format": _TEXT}
    )
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "feedcore"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"feedcore": formatter},
        "handlers": {"stderr": {**handler, "filters": ["context"]}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": settings.log_level.upper(), "propagate": False},
            "granian.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
