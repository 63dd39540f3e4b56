"""Reading text/event-stream bodies as a client does: events, and the comment lines between them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """One event (``event`` "message" when unnamed), or a comment line (``comment`` set)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(slots=True)
class SseParser:
    """Feeds on chunks of bytes, cut anywhere; yields each message once its blank line arrived."""

    _buffer: str = ""
    _fields: dict[str, list[str]] = field(default_factory=dict)

    def feed(self, chunk: bytes) -> list[Message]:
        self._buffer += chunk.decode()
        messages: list[Message] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            line = line.removesuffix("\r")
            if line.startswith(":"):
                messages.append(Message(comment=line[1:].strip()))
            elif line:
                name, _, value = line.partition(":")
                self._fields.setdefault(name, []).append(value.removeprefix(" "))
            elif self._fields:
                fields, self._fields = self._fields, {}
                messages.append(
                    Message(
                        event=fields.get("event", ["message"])[-1],
                        data="\n".join(fields.get("data", [])),
                        id=fields.get("id", [None])[-1],
                    )
                )
        return messages
