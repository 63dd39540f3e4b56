"""Bearer tokens: HS256 JWTs whose ``sub`` is the user id, with a required expiry."""

from __future__ import annotations

import functools
import os
import secrets
import time
from datetime import UTC, datetime, timedelta

import jwt

from feedcore import InvalidUserId, UserId, parse_user_id
from feedcore.entrypoints.settings import MIN_SECRET_BYTES, PREFIX, ConfigurationError, Settings

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired or not signed with our secret."""


class Tokens:
    """Issues and verifies tokens.

    A client sends the same token with every request until it expires, so the outcome of checking a
    signature is remembered for the newest ``remembered`` tokens; the expiry is checked every time.
    """

    def __init__(self, secret: str, *, remembered: int = 65_536) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        # Only valid tokens are remembered: a failure raises, and lru_cache keeps no exceptions.
        self._checked = functools.lru_cache(maxsize=remembered)(self._check)

    def issue(self, user: UserId, *, ttl: timedelta = timedelta(hours=24)) -> str:
        now = datetime.now(UTC)
        return jwt.encode({"sub": user, "iat": now, "exp": now + ttl}, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> UserId:
        user, expires = self._checked(token)
        if expires <= time.time():
            raise InvalidToken("Signature has expired")
        return user

    def _check(self, token: str) -> tuple[UserId, float]:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
            return parse_user_id(claims["sub"]), float(claims["exp"])
        except (jwt.InvalidTokenError, InvalidUserId, TypeError, ValueError) as error:
            raise InvalidToken(str(error)) from None


def token_secret(settings: Settings, *, create: bool) -> str:
    """``FEEDCORE_JWT_SECRET``, or in embedded mode the development secret file, made if asked."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret
    if not settings.embedded:
        raise ConfigurationError(f"{PREFIX}JWT_SECRET is required outside embedded mode")
    path = settings.secret_file()
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise ConfigurationError(f"no {PREFIX}JWT_SECRET and no development secret at {path}: run `feedcore serve`")
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Created readable by its owner only, before the secret is written into it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret
