"""The one place where Vigil's errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vigil.core.errors import AuthError, OverloadedError, VigilError


def _vigil_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VigilError)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, OverloadedError):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse({"error": type(exc).__name__, "detail": str(exc)},
                        status_code=exc.http_status, headers=headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse({"error": "InputError", "detail": f"{where}: {first.get('msg')}"},
                        status_code=400)


def install(app: FastAPI) -> None:
    app.add_exception_handler(VigilError, _vigil_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
