"""schemathesis against the API's own OpenAPI document: no server errors, no schema violations."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import schemathesis
from schemathesis import Case

from feedcore import PostId, UserId
from feedcore.entrypoints.auth import Tokens
from feedcore.entrypoints.http.app import create_service_app
from feedcore.entrypoints.settings import Settings
from feedcore.model import MAX_POST_ID, encode_post_cursor, encode_user_cursor

SECRET = "s" * 48
# The token's user is the one schemathesis reads the feed of when it happens to pick that id.
AUTHORIZATION = {"Authorization": f"Bearer {Tokens(SECRET).issue(UserId('schemathesis'))}"}

app = create_service_app(
    Settings(jwt_secret=SECRET, rate_limit_per_second=0, dev_secret_file="/nonexistent")  # noqa: S106  # a path
)
# A live stream's response never ends, so no call of it can be validated whole: its contract is
# tested in tests/unit/http/test_feed_stream.py.
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).exclude(path="/feeds/{user_id}/stream")


def as_issued(case: Case[Any]) -> None:
    """Make the parts of a request that only the server can mint ones it could have minted.

    A cursor is opaque: no schema can tell those the server issued from other strings, and the
    others are rightly refused (unit tests check they get a 400). An Idempotency-Key reused with
    another body is rightly refused too (422), so each generated body gets a key of its own.
    """
    cursor = (case.query or {}).get("cursor")
    if isinstance(cursor, str):
        seed = zlib.crc32(cursor.encode())
        if case.path.endswith(("/followers", "/following")):
            case.query["cursor"] = encode_user_cursor(UserId(f"u{seed}"))
        else:
            case.query["cursor"] = encode_post_cursor(PostId(1 + seed % MAX_POST_ID))
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and key.isascii() and key.isprintable() and " " not in key and 0 < len(key) <= 255:
        case.headers["Idempotency-Key"] = hashlib.sha256(f"{key}\n{case.body!r}".encode()).hexdigest()


@schema.parametrize()
def test_the_api_honours_its_schema(case: Case[Any]) -> None:
    as_issued(case)
    case.call_and_validate(headers=AUTHORIZATION)
