"""`renewals console`: a read-only web console, server-rendered — charts of the last hour from
Prometheus, topics and lag (stale consumer groups apart), dead letters with their latest
errors, running batches, and a search by CSN or subscription."""

from services.operations.console.app import TOKEN_COOKIE, ConsoleSettings, create_app
from services.operations.console.server import (
    TOKEN_ENV,
    ConsoleServer,
    TokenError,
    UnsafeBindError,
    allowed_hosts,
    read_token,
    token_from_environment,
)

__all__ = [
    "TOKEN_COOKIE",
    "TOKEN_ENV",
    "ConsoleServer",
    "ConsoleSettings",
    "TokenError",
    "UnsafeBindError",
    "allowed_hosts",
    "create_app",
    "read_token",
    "token_from_environment",
]
