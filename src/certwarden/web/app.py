"""The composition root: builds the FastAPI app from the settings by mounting routers.

``create_app(settings)`` is the app factory (``certwarden serve`` and each of its worker
processes call it); ``build_app`` mounts the parts it is given (tests hand it their own).
Nothing here reads the environment: the settings say everything.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from certwarden import __version__
from certwarden.ca.publish import Publisher
from certwarden.settings import Settings
from certwarden.web import pki, problems


def build_app(*, publisher: Publisher | None = None,
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


def create_app(settings: Settings) -> FastAPI:
    """OCSP and CRLs from the CA ledger, and ACME under ``/acme`` unless switched off.

    Keys open here, so a wrong passphrase or PIN is a ``CertwardenError`` before serving."""
    from certwarden.store.ca_ledger import SqlLedger

    ledger = SqlLedger.open(settings.database_url)
    publisher = Publisher.open(ledger, passphrase=settings.passphrase, pin=settings.pkcs11_pin)
    if settings.warm_ocsp:
        threading.Thread(target=publisher.responder.warm, name="ocsp-warm", daemon=True).start()
    routers = []
    if settings.acme is not None:
        from certwarden.web.acme import authority_router

        routers.append(authority_router(settings, ledger))
    return build_app(publisher=publisher, routers=routers)
