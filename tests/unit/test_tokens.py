from __future__ import annotations

import time
from datetime import timedelta

import pytest

from feedcore import UserId
from feedcore.entrypoints.auth import InvalidToken, Tokens

SECRET = "tokens-" + "s" * 40


def test_a_remembered_token_is_refused_once_it_has_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens(SECRET)
    token = tokens.issue(UserId("ana"), ttl=timedelta(minutes=5))
    assert tokens.verify(token) == "ana"
    assert tokens.verify(token) == "ana"  # remembered

    monkeypatch.setattr(time, "time", lambda: 10**12)

    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)


def test_a_refused_token_stays_refused() -> None:
    tokens = Tokens(SECRET)
    forged = Tokens("other-" + "s" * 40).issue(UserId("ana"))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.verify(forged)
