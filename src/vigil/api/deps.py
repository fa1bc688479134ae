"""Dependencies shared by the routes: the instance and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from vigil.app import Vigil
from vigil.core import tokens
from vigil.core.tokens import Scope
from vigil.ingest.runtime import IngestRuntime


def get_vigil(request: Request) -> Vigil:
    vigil = request.app.state.vigil
    assert isinstance(vigil, Vigil)
    return vigil


def get_runtime(request: Request) -> IngestRuntime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, IngestRuntime)
    return runtime


VigilDep = Annotated[Vigil, Depends(get_vigil)]
RuntimeDep = Annotated[IngestRuntime, Depends(get_runtime)]


def reader(vigil: VigilDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The name of a caller allowed to read events."""
    return tokens.verify(vigil.db, authorization, Scope.READ)


def sender(vigil: VigilDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The name of a source allowed to send events."""
    return tokens.verify(vigil.db, authorization, Scope.INGEST)


Reader = Annotated[str, Depends(reader)]
Sender = Annotated[str, Depends(sender)]
