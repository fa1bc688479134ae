"""Dependencies shared by the routes: the instance and who is asking.

Every route declares the one permission it needs with :func:`requires`; the caller is
authenticated by a bearer token (API tokens and sign-in sessions) or the session cookie, and
refused with 401 (no valid credentials) or 403 (valid, but not allowed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Header, Request

from vigil.app import Vigil
from vigil.core.auth import Permission, Principal
from vigil.core.errors import TooLargeError
from vigil.ingest.runtime import IngestRuntime
from vigil.people.auth import authenticate

SESSION_COOKIE = "vigil_session"


async def get_vigil(request: Request) -> Vigil:
    vigil = request.app.state.vigil
    assert isinstance(vigil, Vigil)
    return vigil


async def get_runtime(request: Request) -> IngestRuntime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, IngestRuntime)
    return runtime


VigilDep = Annotated[Vigil, Depends(get_vigil)]
RuntimeDep = Annotated[IngestRuntime, Depends(get_runtime)]


async def caller(request: Request, vigil: VigilDep,
                 authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The authenticated principal of this request (any permission).

    The lookup runs in a worker thread (it may wait on the state database's write lock when
    it records a token's last use); the trivial dependencies around it stay on the event loop
    so that a request takes one thread hop for them instead of one each."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return await anyio.to_thread.run_sync(authenticate, vigil.db, authorization, cookie)


Caller = Annotated[Principal, Depends(caller)]


def requires(permission: Permission) -> Any:
    """A dependency giving the caller once it is known to hold ``permission``.

    Use as ``who: Annotated[Principal, requires(Permission.CASES_WRITE)]``.
    """

    async def dependency(who: Caller) -> Principal:
        who.require(permission)
        return who

    dependency.__name__ = f"requires_{permission.name.lower()}"
    checker: Callable[..., Awaitable[Principal]] = dependency
    return Depends(checker)


Reader = Annotated[Principal, requires(Permission.EVENTS_READ)]
Sender = Annotated[Principal, requires(Permission.EVENTS_INGEST)]
AlertReader = Annotated[Principal, requires(Permission.ALERTS_READ)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
