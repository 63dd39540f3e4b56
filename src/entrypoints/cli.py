"""The ``feedcore`` command."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import click
import psycopg

from entrypoints.auth import Tokens, token_secret
from entrypoints.migrations import migrate_database
from entrypoints.settings import ConfigurationError, Settings
from feedcore import InvalidUserId, parse_user_id


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
        settings.check()
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    return settings


@click.group()
def main() -> None:
    """feedcore: a social-feed engine."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (FEEDCORE_HOST; default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65_535), default=None, help="Port (FEEDCORE_PORT; default 8000).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Server processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API (and, in embedded mode, the fan-out worker)."""
    from granian import Granian  # noqa: PLC0415  # only `serve` needs the server
    from granian.constants import Interfaces  # noqa: PLC0415

    settings = _settings()
    host = host or settings.host
    port = settings.port if port is None else port
    if workers > 1:
        raise click.ClickException(
            "this mode keeps state (the embedded store, or the in-process fan-out queue) in one process, "
            "so it runs exactly one worker: drop --workers"
        )
    try:
        token_secret(settings, create=True)
    except (ConfigurationError, OSError) as error:
        raise click.ClickException(str(error)) from None
    if settings.embedded:
        click.echo(f"feedcore (embedded) listening on http://{host}:{port}")
        click.echo("Nothing is persisted: every post, follow and feed is lost when this process stops.")
    else:
        click.echo(f"feedcore listening on http://{host}:{port}, storing in PostgreSQL; fan-out runs in this process")
    click.echo("Get a token with `feedcore token USER` and send it as `Authorization: Bearer TOKEN`.")
    if settings.jwt_secret is None:
        click.echo(f"Tokens are signed with the development secret in {settings.secret_file()}.")
    sys.stdout.flush()
    Granian(
        "entrypoints.http.app:create_service_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]  # granian validates the name
    ).serve()


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
