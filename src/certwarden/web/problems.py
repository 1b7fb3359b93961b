"""RFC 7807 problem documents: the ONE place where errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from certwarden.ca.errors import NotFound, RequestRefused, SignerError
from certwarden.errors import CertwardenError, PasswordError

PROBLEM = "application/problem+json"
# Specific error classes first; the first isinstance match wins.
STATUS: tuple[tuple[type[CertwardenError], int, str], ...] = (
    (NotFound, 404, "not-found"),
    (RequestRefused, 403, "request-refused"),
    (PasswordError, 503, "key-unavailable"),
    (SignerError, 503, "signer-unavailable"),
    (CertwardenError, 400, "bad-request"),
)


def problem(status: int, kind: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": f"urn:certwarden:problem:{kind}", "title": kind.replace("-", " "),
                         "status": status, "detail": detail}, status_code=status,
                        media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(CertwardenError)
    async def _certwarden(_req: Request, exc: CertwardenError) -> JSONResponse:
        for cls, status, kind in STATUS:
            if isinstance(exc, cls):
                return problem(status, kind, str(exc))
        return problem(400, "bad-request", str(exc))  # pragma: no cover - root matches above

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http-error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return problem(400, "bad-request", str(first.get("msg", "invalid request")))

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return problem(500, "internal-error", type(exc).__name__)
