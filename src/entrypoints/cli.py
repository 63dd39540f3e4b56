"""The ``feedcore`` command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import click
import psycopg
from prometheus_client import values

from feedcore import InvalidUserId, parse_user_id
from feedcore.adapters.metrics import MULTIPROCESS_DIRECTORY
from feedcore.entrypoints import dead_letter_tools, processes
from feedcore.entrypoints.auth import Tokens, token_secret
from feedcore.entrypoints.logs import configure_logging, logging_config
from feedcore.entrypoints.migrations import migrate_database
from feedcore.entrypoints.settings import ConfigurationError, Settings

T = TypeVar("T")
#: A request's line and headers at most (Tomcat's and Jetty's default; ours carry a bearer token, an
#: Idempotency-Key and what proxies add). It is also what a connection may buffer: 4,000 connections
#: each holding an unfinished 7.5 KB head cost a worker 41 MB (with 16 KiB, 100 MB; with granian's
#: default of ~400 KiB, 2,000 of them cost 790 MB).
MAX_REQUEST_HEAD_BYTES = 8 * 1024


def _settings(*, serving: bool = True, kafka: bool = False) -> Settings:
    try:
        settings = Settings.from_env()
        settings.check(serving=serving)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    if kafka and not settings.kafka_bootstrap:
        raise click.ClickException("FEEDCORE_KAFKA_BOOTSTRAP (and FEEDCORE_DATABASE_URL) must be set for this command")
    configure_logging(settings)
    return settings


@click.group()
@click.version_option(package_name="feedcore", message="%(prog)s %(version)s")
def main() -> None:
    """feedcore: a social-feed engine."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (FEEDCORE_HOST; default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65_535), default=None, help="Port (FEEDCORE_PORT; default 8000).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Server processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API (and, in embedded mode, the fan-out worker)."""
    from granian import Granian  # noqa: PLC0415  # only `serve` needs the server
    from granian.constants import HTTPModes, Interfaces  # noqa: PLC0415
    from granian.http import HTTP1Settings  # noqa: PLC0415

    settings = _settings()
    host = host or settings.host
    port = settings.port if port is None else port
    if workers > 1 and not (settings.database_url and (settings.kafka_bootstrap or settings.redis_url)):
        raise click.ClickException(
            "--workers above 1 needs FEEDCORE_DATABASE_URL and FEEDCORE_KAFKA_BOOTSTRAP or FEEDCORE_REDIS_URL: "
            "the embedded store, and a feed cache kept in one process, cannot be shared by several"
        )
    try:
        token_secret(settings, create=True)
    except (ConfigurationError, OSError) as error:
        raise click.ClickException(str(error)) from None
    if settings.embedded:
        click.echo(f"feedcore (embedded) listening on http://{host}:{port}")
        click.echo("Nothing is persisted: every post, follow and feed is lost when this process stops.")
    elif settings.kafka_bootstrap:
        click.echo(
            f"feedcore listening on http://{host}:{port}, storing in PostgreSQL, relaying events to Kafka; "
            "run `feedcore process` to apply them to feeds"
        )
    else:
        click.echo(f"feedcore listening on http://{host}:{port}, storing in PostgreSQL; fan-out runs in this process")
    click.echo("Get a token with `feedcore token USER` and send it as `Authorization: Bearer TOKEN`.")
    if settings.jwt_secret is None:
        click.echo(f"Tokens are signed with the development secret in {settings.secret_file()}.")
    sys.stdout.flush()
    with _shared_metrics(workers):
        Granian(
            "feedcore.entrypoints.http.app:create_service_app",
            factory=True,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            log_level=settings.log_level.lower(),  # type: ignore[arg-type]  # granian validates the name
            log_dictconfig=logging_config(settings),
            # A worker that dies (killed, out of memory) is started again; without it granian stops
            # the whole server when one of its workers exits.
            respawn_failed_workers=True,
            # HTTP/1.1 only. In "auto" mode hyper-util first reads a connection's opening bytes to
            # tell HTTP/1 from HTTP/2, with no timeout (hyperium/hyper#3962): a client that connects
            # and sends nothing is held for ever. Nothing here speaks clear-text HTTP/2.
            http=HTTPModes.http1,
            http1_settings=HTTP1Settings(
                # hyper closes a connection whose request headers are not all in by then, counted from
                # its opening or its previous response: a slow-loris and an idle connection alike
                # (default 30 s). No 408: the connection is just closed.
                header_read_timeout=round(settings.header_timeout_seconds * 1000),
                # A longer request head gets 431; each connection buffers at most about this much.
                max_buffer_size=MAX_REQUEST_HEAD_BYTES,
            ),
            # granian holds a permit a connection, idle or not, and accepts no more beyond this many
            # a worker (default: 1,024 shared by the workers); new clients would queue behind idle ones.
            backpressure=settings.max_connections,
        ).serve()


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, each keeps its metrics in a directory they share, so that /metrics,
    whichever worker answers it, adds up all of them (prometheus-client's multiprocess mode)."""
    if workers == 1 or os.environ.get(MULTIPROCESS_DIRECTORY):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="feedcore-metrics-") as directory:
        os.environ[MULTIPROCESS_DIRECTORY] = directory
        # prometheus-client chose how to keep values when it was imported, before the variable.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        yield


@main.command()
@click.argument("user")
@click.option("--hours", type=click.IntRange(min=1), default=24, show_default=True, help="How long it is valid.")
def token(user: str, hours: int) -> None:
    """Print a bearer token for USER that the server accepts."""
    settings = _settings()
    try:
        user_id = parse_user_id(user)
        secret = token_secret(settings, create=False)
    except (InvalidUserId, ConfigurationError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(Tokens(secret).issue(user_id, ttl=timedelta(hours=hours)))


@main.command()
def migrate() -> None:
    """Apply pending PostgreSQL schema migrations to FEEDCORE_DATABASE_URL."""
    settings = _settings()
    try:
        applied = asyncio.run(migrate_database(settings))
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    except psycopg.Error as error:
        raise click.ClickException(f"could not migrate: {error}") from None
    click.echo("\n".join(f"applied {name}" for name in applied) or "the schema is up to date")


@main.command()
def relay() -> None:
    """Relay the outbox to Kafka (as `feedcore serve` also does), until SIGTERM or SIGINT."""
    settings = _settings(serving=False, kafka=True)
    processes.run_until_signalled(lambda stop: processes.relay(settings, stop), grace=settings.shutdown_seconds)


@main.command()
def process() -> None:
    """Apply the events of the Kafka topic to the feeds, as one member of the processor group.

    Runs until SIGTERM or SIGINT; then it finishes and commits the batch in hand, leaves the group
    and exits 0.
    """
    settings = _settings(serving=False, kafka=True)
    processes.run_until_signalled(lambda stop: processes.process(settings, stop), grace=settings.shutdown_seconds)


@main.group()
def dlq() -> None:
    """The dead-letter topic: events the processor set aside."""


def _run_tool(action: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(action)
    except dead_letter_tools.KafkaUnreachable as error:
        raise click.ClickException(str(error)) from None


@dlq.command("list")
def dlq_list() -> None:
    """A table of the dead letters, oldest first."""
    letters = _run_tool(dead_letter_tools.dead_letters(_settings(serving=False, kafka=True)))
    if not letters:
        click.echo("the dead-letter topic is empty")
        return
    rows = [
        (
            letter.id,
            letter.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(letter.attempts),
            f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}",
            letter.error_type.rpartition(".")[2],
            _shorten(letter.error_message, 60),
        )
        for letter in letters
    ]
    header = ("ID", "FAILED AT (UTC)", "TRIES", "FROM", "ERROR", "MESSAGE")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@dlq.command("show")
@click.argument("letter_id", metavar="ID")
def dlq_show(letter_id: str) -> None:
    """Everything about one dead letter, its original bytes included."""
    letters = _run_tool(dead_letter_tools.dead_letters(_settings(serving=False, kafka=True)))
    letter = next((found for found in letters if found.id == letter_id), None)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id}: `feedcore dlq list` shows their ids")
    for label, value in (
        ("id", letter.id),
        ("failed at", letter.failed_at.isoformat()),
        ("attempts", letter.attempts),
        ("from", f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"),
        ("error type", letter.error_type),
        ("error", letter.error_message),
        ("key", _printable(letter.key)),
        ("value", _printable(letter.value)),
    ):
        click.echo(f"{label + ':':<12}{value}")


@dlq.command("replay")
@click.argument("letter_ids", metavar="[ID]...", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def dlq_replay(letter_ids: tuple[str, ...], *, replay_all: bool) -> None:
    """Publish dead letters' original bytes to the main topic again (after fixing what failed)."""
    if replay_all == bool(letter_ids):
        raise click.UsageError("give the ids to replay, or --all")
    settings = _settings(serving=False, kafka=True)
    replayed = _run_tool(dead_letter_tools.replay_dead_letters(settings, None if replay_all else set(letter_ids)))
    missing = set(letter_ids) - {letter.id for letter in replayed}
    click.echo(f"replayed {len(replayed)} dead letter(s) to {settings.kafka_topic}")
    if missing:
        raise click.ClickException(f"no dead letter {', '.join(sorted(missing))}")


@dlq.command("purge")
@click.confirmation_option(prompt="Delete every dead letter for good?")
def dlq_purge() -> None:
    """Delete every dead letter now in the topic."""
    purged = _run_tool(dead_letter_tools.purge(_settings(serving=False, kafka=True)))
    click.echo(f"purged {purged} dead letter(s)")


def _shorten(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _printable(data: bytes | None) -> str:
    if data is None:
        return "(none)"
    try:
        return data.decode()
    except UnicodeDecodeError:
        return repr(data)
