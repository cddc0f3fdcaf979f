"""The ``apipod`` command: serve, migrate, create-key, import-original, copilot login, rotate-secret-key,
version."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

import attrs
import orjson

from apipod import __version__
from apipod.bootstrap.maintenance import migrate_database
from apipod.bootstrap.runtime import resolve_admin_secret, start_runtime
from apipod.bootstrap.settings import ConfigError, Settings, environment, load_settings
from apipod.domain.errors import ApipodError
from apipod.entrypoints.cli.logs import configure_logging


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cmd_serve(args: argparse.Namespace, settings: Settings, env: dict[str, str]) -> int:
    from apipod.entrypoints.cli.workers import worker_count

    if args.migrate:
        settings = attrs.evolve(settings, migrate_on_start=True)
    host = args.host or settings.host
    port = args.port or settings.port
    workers = worker_count(args.workers or env.get("WORKERS") or "1")
    secret, generated = resolve_admin_secret(settings)
    if generated:
        shown = "localhost" if host in {"0.0.0.0", "::"} else host  # noqa: S104 - only compares
        _print(
            "apipod generated an admin secret (shown once; it is kept in a file beside the database):\n"
            f"  {secret}\n"
            "Create a first key with:\n"
            f"  curl -s -X POST http://{shown}:{port}/admin/create-key -H 'x-admin-secret: {secret}' "
            '-H \'content-type: application/json\' -d \'{"name": "me", "tier": "demo"}\''
        )
    if workers > 1:
        from apipod.entrypoints.cli.workers import serve_workers

        return serve_workers(workers, settings, env, secret, host=host, port=port)
    from apipod.entrypoints.cli.server import build_server

    build_server(settings, env, secret, host=host, port=port).run()
    return 0


async def _create_key(settings: Settings, env: dict[str, str], name: str, tier: str, days: float | None) -> int:
    runtime = await start_runtime(settings, env)
    try:
        expires = runtime.clock.now() + timedelta(days=days) if days else None
        issued = await runtime.gateway.issue_key(name=name, plan=tier, expires_at=expires)
    finally:
        await runtime.close()
    key = issued.key
    _print(
        orjson.dumps(
            {
                "id": key.id,
                "api_key": issued.plaintext,
                "name": key.name,
                "tier": key.plan,
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            }
        ).decode()
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apipod", description="Self-hosted AI API gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--migrate", action="store_true", help="apply PostgreSQL migrations before serving")
    serve.add_argument(
        "--workers", help="processes serving the port: a number or 'auto' (one per core); default WORKERS, else 1"
    )
    sub.add_parser("migrate", help="apply pending database migrations")
    create = sub.add_parser("create-key", help="issue an API key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--tier", "--plan", dest="tier", required=True)
    create.add_argument("--expires-in", type=float, help="days (may be fractional)")
    imp = sub.add_parser("import-original", help="import plans, providers and users from the Go original")
    imp.add_argument("--from", dest="source", required=True, help="the original's PostgreSQL DSN")
    copilot = sub.add_parser("copilot", help="GitHub Copilot accounts")
    copilot_sub = copilot.add_subparsers(dest="copilot_command", required=True)
    login = copilot_sub.add_parser("login", help="GitHub device flow; stores the token as an account")
    login.add_argument("--provider", required=True)
    rotate = sub.add_parser(
        "rotate-secret-key",
        help="re-encrypt the stored provider secrets under a new key",
        description="Re-encrypts every stored provider secret from the current key (APIPOD_SECRET_KEY, else the "
        "key file) to a new one: --new-key, else APIPOD_NEW_SECRET_KEY, else a generated key. Stop the "
        "running apipod processes first; restart them with the new key.",
    )
    rotate.add_argument(
        "--new-key", help="the new key (URL-safe base64 of 32 bytes; --new-key=KEY); prefer APIPOD_NEW_SECRET_KEY"
    )
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        _print(f"apipod {__version__}")
        return 0
    env = environment()
    try:
        settings = load_settings(env)
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "serve":
            return cmd_serve(args, settings, env)
        if args.command == "migrate":
            applied = asyncio.run(migrate_database(settings.database_url))
            _print(f"applied migrations: {applied}" if applied else "the schema is up to date")
            return 0
        if args.command == "create-key":
            return asyncio.run(_create_key(settings, env, args.name, args.tier, args.expires_in))
        if args.command == "import-original":
            from apipod.entrypoints.cli.extra import import_original

            return asyncio.run(import_original(settings, env, args.source))
        if args.command == "rotate-secret-key":
            from apipod.bootstrap.rotate_key import rotate_secret_key, rotation_report

            new_key = args.new_key or env.get("APIPOD_NEW_SECRET_KEY") or None
            _print(rotation_report(asyncio.run(rotate_secret_key(settings, new_key))))
            return 0
        if args.command == "copilot":
            from apipod.entrypoints.cli.extra import copilot_login

            return asyncio.run(copilot_login(settings, env, args.provider))
    except ConfigError as exc:
        sys.stderr.write(f"apipod: configuration error: {exc}\n")
        return 2
    except ApipodError as exc:
        sys.stderr.write(f"apipod: {exc.message}\n")
        return 1
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
