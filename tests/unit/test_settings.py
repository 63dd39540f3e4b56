from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest
from redis.asyncio import Redis, RedisCluster

from feedcore import UserId
from feedcore.adapters.redis import redis_client
from feedcore.entrypoints.auth import InvalidToken, Tokens, token_secret
from feedcore.entrypoints.settings import ConfigurationError, Settings


def test_defaults_are_embedded_on_loopback() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.embedded) == ("127.0.0.1", 8000, True)
    assert settings.policies.celebrity_threshold == 10_000


def test_values_come_from_feedcore_variables_and_others_are_ignored() -> None:
    settings = Settings.from_env(
        {"FEEDCORE_PORT": "9001", "FEEDCORE_RATE_LIMIT_PER_SECOND": "0", "FEEDCORE_TEST_EXAMPLES": "9", "HOME": "/"}
    )
    assert (settings.port, settings.rate_limit_per_second) == (9001, 0)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FEEDCORE_PORTT": "1"}, "FEEDCORE_PORTT"),
        ({"FEEDCORE_PORT": "eighty"}, "FEEDCORE_PORT"),
        ({"FEEDCORE_PORT": "70000"}, "FEEDCORE_PORT"),
        ({"FEEDCORE_IDEMPOTENCY_TTL_HOURS": "1"}, "FEEDCORE_IDEMPOTENCY_TTL_HOURS"),
    ],
)
def test_bad_settings_stop_the_start_and_say_which(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(environ)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        Settings.from_env({"FEEDCORE_JWT_SECRET": "short"}).check()


def test_redis_without_postgresql_is_a_clear_error() -> None:
    redis = {"FEEDCORE_REDIS_URL": "redis://somewhere:1", "FEEDCORE_JWT_SECRET": "k" * 32}
    with pytest.raises(ConfigurationError, match="FEEDCORE_REDIS_URL needs FEEDCORE_DATABASE_URL"):
        Settings.from_env(redis).check()
    Settings.from_env({**redis, "FEEDCORE_DATABASE_URL": "postgresql://localhost/x"}).check()


def test_kafka_without_postgresql_is_a_clear_error() -> None:
    kafka = {"FEEDCORE_KAFKA_BOOTSTRAP": "somewhere:1", "FEEDCORE_JWT_SECRET": "k" * 32}
    with pytest.raises(ConfigurationError, match="FEEDCORE_KAFKA_BOOTSTRAP needs FEEDCORE_DATABASE_URL"):
        Settings.from_env(kafka).check()
    Settings.from_env({**kafka, "FEEDCORE_DATABASE_URL": "postgresql://localhost/x"}).check()


def test_the_dead_letter_topic_follows_the_main_one_unless_named() -> None:
    assert Settings(kafka_topic="events").dead_letter_topic == "events.dlq"
    assert Settings(kafka_topic="events", kafka_dlq_topic="parked").dead_letter_topic == "parked"
    with pytest.raises(ConfigurationError, match="FEEDCORE_KAFKA_DLQ_TOPIC"):
        Settings(kafka_topic="events", kafka_dlq_topic="events").check()


def test_outside_embedded_mode_a_secret_is_required() -> None:
    database = {"FEEDCORE_DATABASE_URL": "postgresql://localhost/x"}
    with pytest.raises(ConfigurationError, match="FEEDCORE_JWT_SECRET"):
        Settings.from_env(database).check()
    Settings.from_env(database).check(serving=False)  # the processor and the relay sign no tokens
    settings = Settings.from_env({**database, "FEEDCORE_JWT_SECRET": "k" * 32})
    settings.check()
    assert not settings.embedded


def test_the_development_secret_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings(dev_secret_file=str(tmp_path / "state" / "secret"))
    with pytest.raises(ConfigurationError, match="feedcore serve"):
        token_secret(settings, create=False)
    made = token_secret(settings, create=True)
    assert len(made.encode()) >= 32
    assert token_secret(settings, create=False) == made == token_secret(settings, create=True)
    assert stat.S_IMODE((tmp_path / "state" / "secret").stat().st_mode) == 0o600


def test_a_configured_secret_wins_over_the_file(tmp_path: Path) -> None:
    settings = Settings(jwt_secret="k" * 32, dev_secret_file=str(tmp_path / "secret"))
    assert token_secret(settings, create=True) == "k" * 32
    assert not (tmp_path / "secret").exists()


class TestTokens:
    def test_a_token_names_its_user(self) -> None:
        tokens = Tokens("k" * 32)
        assert tokens.verify(tokens.issue(UserId("ana"))) == "ana"

    def test_tokens_of_another_secret_are_refused(self) -> None:
        with pytest.raises(InvalidToken):
            Tokens("k" * 32).verify(Tokens("j" * 32).issue(UserId("ana")))

    def test_a_secret_shorter_than_32_bytes_is_refused(self) -> None:
        with pytest.raises(ConfigurationError):
            Tokens("k" * 31)

    @pytest.mark.parametrize("claims", [{"sub": "ana"}, {"exp": 4_102_444_800}, {"sub": "a b", "exp": 4_102_444_800}])
    def test_tokens_without_a_valid_sub_and_an_exp_are_refused(self, claims: dict[str, object]) -> None:

        with pytest.raises(InvalidToken):
            Tokens("k" * 32).verify(jwt.encode(claims, "k" * 32, algorithm="HS256"))

    def test_tokens_of_another_algorithm_are_refused(self) -> None:

        unsigned = jwt.encode({"sub": "ana", "exp": 4_102_444_800}, None, algorithm="none")
        with pytest.raises(InvalidToken):
            Tokens("k" * 32).verify(unsigned)


def test_every_variable_the_services_script_exports_is_one_feedcore_takes() -> None:
    # `eval "$(infra/infra.py up)"` and then `feedcore serve` must start: a variable feedcore does
    # not know stops it.
    from infra.infra import SERVICES  # noqa: PLC0415  # the script, not the package, is the subject

    settings = Settings.from_env({service.env_var: service.url() for service in SERVICES})
    assert settings.redis_url == "redis://127.0.0.1:56379/0"
    assert settings.database_url is not None
    assert settings.kafka_bootstrap is not None


def test_a_redis_cluster_is_named_by_its_scheme() -> None:
    client = redis_client("redis+cluster://127.0.0.1:1", max_connections=2, timeout=0.1)
    assert isinstance(client, RedisCluster)
    assert isinstance(redis_client("redis://127.0.0.1:1/0", max_connections=2, timeout=0.1), Redis)
