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


def create_app_from_env() -> FastAPI:
    """The app for each ``serve --workers N`` process (uvicorn imports this by name).

    Reads what ``certwarden serve`` put in the environment: ``CERTWARDEN_DATABASE_URL``,
    ``CERTWARDEN_CA_PASSPHRASE``, ``CERTWARDEN_PKCS11_PIN``; pre-signs OCSP answers unless
    ``CERTWARDEN_SERVE_NO_WARM`` is set.
    """
    import os
    import threading

    from certwarden.store.ca_ledger import SqlLedger

    passphrase = os.environ.get("CERTWARDEN_CA_PASSPHRASE")
    ledger = SqlLedger.open(os.environ.get("CERTWARDEN_DATABASE_URL"))
    publisher = Publisher.open(ledger, passphrase=(lambda: passphrase.encode())
                               if passphrase else None,
                               pin=os.environ.get("CERTWARDEN_PKCS11_PIN"))
    if not os.environ.get("CERTWARDEN_SERVE_NO_WARM"):
        threading.Thread(target=publisher.responder.warm, name="ocsp-warm", daemon=True).start()
    routers = []
    if os.environ.get("CERTWARDEN_ACME") == "on":
        from certwarden.ca import Authority
        from certwarden.web.acme import acme_router_from_env

        authority = Authority.open(ledger, issuer=os.environ.get("CERTWARDEN_ACME_CA") or None,
                                   passphrase=(lambda: passphrase.encode()) if passphrase
                                   else None, pin=os.environ.get("CERTWARDEN_PKCS11_PIN"))
        routers.append(acme_router_from_env(os.environ, authority=authority,
                                            db_url=os.environ.get("CERTWARDEN_DATABASE_URL")))
    return create_app(publisher=publisher, routers=routers)
