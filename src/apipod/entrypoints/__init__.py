"""Driving side: the Falcon ASGI app and the CLI. Never imports apipod.adapters."""
