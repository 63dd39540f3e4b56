"""Logging: JSON lines in real mode, readable lines embedded, each with its request or event id.

The level comes from ``FEEDCORE_LOG_LEVEL``; the format from ``FEEDCORE_LOG_FORMAT`` (``json`` or
``text``; by default JSON when ``FEEDCORE_DATABASE_URL`` is set, text embedded).
"""

from __future__ import annotations

import logging
import logging.config
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS

from feedcore.entrypoints.settings import Settings

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


class Repeats(logging.Filter):
    """Folds what other people's libraries say over and over: each of their messages (by logger,
    level and template) passes once every ``every`` seconds, saying how often it came meanwhile.

    While a broker restarts, aiokafka logs that it cannot reach it hundreds of times a second and
    psycopg's pool each failed connection: about 3,000 error lines a process for 15 s of outage,
    burying what happened. feedcore's own messages all pass: each says one thing once (an outage
    and its end, a dead letter, a retry with its backoff).
    """

    OWN: Final = ("feedcore.",)
    #: Templates remembered at most; past it, the memory starts again.
    REMEMBERED: Final = 1_000

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._every = every
        self._clock = clock
        #: When each template last passed, and how often it came since.
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(self.OWN):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._every:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if len(self._seen) >= self.REMEMBERED:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if seen is not None and seen[1]:
            record.msg = f"{record.getMessage()} (and {seen[1]} more like it in the {now - seen[0]:.0f} s before)"
            record.args = None
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
        "filters": {"context": {"()": ContextFilter}, "repeats": {"()": Repeats}},
        "formatters": {"feedcore": formatter},
        "handlers": {"stderr": {**handler, "filters": ["repeats", "context"]}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": settings.log_level.upper(), "propagate": False},
            "granian.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
