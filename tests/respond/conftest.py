"""Fixtures of the notification tests: a webhook receiver and SMTP servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from respond.servers import Mailbox, Receiver, mailbox, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """An SMTP server on loopback that accepts every message (no TLS, no login)."""
    with mailbox() as box:
        yield box


@pytest.fixture
def smtp_login() -> Iterator[Mailbox]:
    """An SMTP server that requires AUTH LOGIN/PLAIN as ``vigil`` / ``s3cret-pass``."""
    logins: list[tuple[str, str]] = []

    def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        logins.append((user, password))
        return AuthResult(success=(user, password) == ("vigil", "s3cret-pass"), handled=False)

    with mailbox(authenticator=authenticate, auth_required=True, auth_require_tls=False) as box:
        box.logins = logins
        yield box
