"""The one exception tree of Vigil.

Every error a user can cause is a :class:`VigilError`. The CLI prints it as one line; the API
maps it to an HTTP status in exactly one place (``vigil.api.errors``). Rule and parser errors
carry a location (file and line) so the message points at the bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where in an input something went wrong."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source


class VigilError(Exception):
    """Base of every error Vigil raises on purpose."""

    http_status = 500

    def __init__(self, message: str, *, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.location}: {self.message}"
        return self.message


class ConfigError(VigilError):
    """The configuration file or environment is invalid."""

    http_status = 500


class InputError(VigilError):
    """The caller sent something invalid (bad argument, bad query, bad body)."""

    http_status = 400


class ParseError(InputError):
    """A record could not be parsed in the format it claims to be."""

    http_status = 400


class RuleError(InputError):
    """A detection rule is invalid or uses something Vigil cannot compile."""

    http_status = 400


class UnknownFormatError(InputError):
    """The format of an input could not be detected, or is not supported."""

    http_status = 400


class QueryError(InputError):
    """A search query is malformed or not allowed."""

    http_status = 400


class NotFoundError(VigilError):
    """The thing asked for does not exist."""

    http_status = 404


class ConflictError(VigilError):
    """The request contradicts the current state (an invalid transition, a gate not met)."""

    http_status = 409


class AuthError(VigilError):
    """The caller is not authenticated."""

    http_status = 401


class ForbiddenError(VigilError):
    """The caller is authenticated but not allowed to do this."""

    http_status = 403


class TooLargeError(InputError):
    """An input is larger than the configured limit."""

    http_status = 413


class OverloadedError(VigilError):
    """Vigil is behind; the caller should retry later."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttemptsError(OverloadedError):
    """Too many failed attempts (e.g. sign-ins) in a short time; retry after a pause."""


class StoreBusyError(VigilError):
    """The event store is held by another process (one writer at a time)."""

    http_status = 503


class StateError(VigilError):
    """The state database is unreachable or not migrated."""

    http_status = 503
