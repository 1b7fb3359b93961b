"""The composition root: builds the FastAPI app by mounting routers, nothing else.

Each area contributes a router factory (``web.pki.router(publisher)``, later
``web.acme.router(...)``); ``create_app`` mounts what it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from certwarden import __version__
from certwarden.ca.publish import Publisher
from certwarden.web import pki, problems


def create_app(*, publisher: Publisher | None = None,
               routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(title="certwarden", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    problems.install(app)
    if publisher is not None:
        app.include_router(pki.router(publisher))
    for extra in routers:
        app.include_router(extra)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
