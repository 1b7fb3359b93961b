"""The ACME routes (RFC 8555), mounted under ``/acme``. HTTP only: the protocol is
``certwarden.acme``; this module reads bodies, adds nonces and Link headers, and turns every
``AcmeProblem`` (and any unexpected error) into ``application/problem+json``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from certwarden.acme.authority import AuthorityIssuer
from certwarden.acme.certificates import renewal_info
from certwarden.acme.context import AcmeSettings, Endpoint, RequestContext
from certwarden.acme.issuer import CertificateIssuer
from certwarden.acme.problems import AcmeProblem, ProblemType
from certwarden.acme.server import AcmeServer
from certwarden.acme.wire import Reply, Urls
from certwarden.ca import Authority, Ledger
from certwarden.settings import Settings
from certwarden.store.acme_repo import AcmeRepo

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a CSR with 100 names is ~10 KiB; JWS overhead doubles it at most
JOSE = "application/jose+json"
_READ_ONLY = {"directory": "GET", "new-nonce": "GET, HEAD"}  # the resources read without a JWS


def authority_router(settings: Settings, ledger: Ledger) -> APIRouter:
    """The ``/acme`` router ``certwarden serve`` mounts, in front of the private CA."""
    assert settings.acme is not None
    authority = Authority.open(ledger, issuer=settings.ca_name, passphrase=settings.passphrase,
                               pin=settings.pkcs11_pin)
    server = build_acme_server(db_url=settings.database_url, issuer=AuthorityIssuer(authority),
                               settings=settings.acme)
    return acme_router(server)


def build_acme_server(*, db_url: str, issuer: CertificateIssuer,
                      settings: AcmeSettings | None = None) -> AcmeServer:
    """The composition root: SQL store + the CA + settings -> an ACME core."""
    return AcmeServer(store=AcmeRepo.open(db_url), issuer=issuer, settings=settings)


def mount_acme(app: FastAPI, server: AcmeServer, *, prefix: str = "/acme",
               base_url: str | None = None) -> None:
    app.include_router(acme_router(server, prefix=prefix, base_url=base_url))
    app.router.add_event_handler("shutdown", server.close)


def _problem(problem: AcmeProblem, nonce: str | None, index: str | None) -> Response:
    headers = dict(problem.headers)
    if nonce:
        headers["Replay-Nonce"] = nonce
    headers["Cache-Control"] = "no-store"
    if index:
        headers["Link"] = f'<{index}>;rel="index"'
    return JSONResponse(problem.as_dict(), status_code=problem.status, headers=headers,
                        media_type="application/problem+json")


def _response(reply: Reply, nonce: str, urls: Urls) -> Response:
    headers: dict[str, str] = {"Replay-Nonce": nonce, "Cache-Control": "no-store"}
    links = [(urls.directory(), "index"), *[x for x in reply.links if x[1] != "index"]]
    headers["Link"] = ", ".join(f'<{u}>;rel="{r}"' for u, r in links)
    if reply.location:
        headers["Location"] = reply.location
    headers.update(reply.headers or {})
    if isinstance(reply.body, bytes):
        return Response(reply.body, status_code=reply.status, headers=headers,
                        media_type=reply.content_type)
    if reply.body is None:
        return Response(b"", status_code=reply.status, headers=headers)
    return JSONResponse(dict(reply.body), status_code=reply.status, headers=headers)


def acme_router(server: AcmeServer, *, prefix: str = "/acme",
                base_url: str | None = None) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["acme"])

    def urls_for(request: Request) -> Urls:
        if base_url:
            return Urls(base_url.rstrip("/"))
        return Urls(f"{request.url.scheme}://{request.url.netloc}{prefix}")

    async def guarded(request: Request, work: Callable[[Urls], Awaitable[Response]]) -> Response:
        urls = urls_for(request)
        try:
            server.check_client(request.client.host if request.client else "")
            return await work(urls)
        except AcmeProblem as refused:
            return _problem(refused, server.new_nonce(), urls.directory())
        except Exception:  # one place turns a bug into a problem document, never a traceback
            log.exception("ACME request %s %s failed", request.method, request.url.path)
            problem = AcmeProblem(ProblemType.SERVER_INTERNAL, "internal error; see server log")
            return _problem(problem, server.new_nonce(), urls.directory())

    def post_route(path: str, endpoint: Endpoint) -> None:
        async def handle(request: Request) -> Response:
            async def work(urls: Urls) -> Response:
                ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != JOSE:
                    raise AcmeProblem(ProblemType.MALFORMED,
                                      f"Content-Type must be {JOSE}", status=415)
                length = request.headers.get("content-length")
                if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
                    raise AcmeProblem(ProblemType.MALFORMED, "request body is too large",
                                      status=413)
                body = await request.body()
                if len(body) > MAX_BODY:
                    raise AcmeProblem(ProblemType.MALFORMED, "request body is too large",
                                      status=413)
                params = request.path_params
                page = request.query_params.get("page", "0")
                ctx = RequestContext(
                    url=str(request.url), urls=urls,
                    client_ip=request.client.host if request.client else "",
                    resource_id=str(params.get("rid", "")),
                    alternate=int(params.get("alt", 0)),
                    page=int(page) if page.isdigit() and len(page) < 7 else 0)
                reply = await run_in_threadpool(server.post, endpoint, body, ctx)
                return _response(reply, server.new_nonce(), urls)

            return await guarded(request, work)

        router.add_api_route(path, handle, methods=["POST"], include_in_schema=False)

        async def not_post(request: Request) -> Response:
            async def work(urls: Urls) -> Response:
                raise AcmeProblem(ProblemType.MALFORMED, "this ACME resource takes POST "
                                  "(POST-as-GET to read it, RFC 8555 §6.3)", status=405,
                                  headers={"Allow": "POST"})

            return await guarded(request, work)

        router.add_api_route(path, not_post, methods=["GET", "HEAD", "PUT", "DELETE", "PATCH"],
                             include_in_schema=False)

    @router.get("/directory")
    async def directory(request: Request) -> Response:
        async def work(urls: Urls) -> Response:
            return JSONResponse(server.directory(urls),
                                headers={"Cache-Control": "public, max-age=60"})

        return await guarded(request, work)

    @router.api_route("/new-nonce", methods=["GET", "HEAD"])
    async def new_nonce(request: Request) -> Response:
        async def work(urls: Urls) -> Response:
            status = 200 if request.method == "HEAD" else 204
            return Response(status_code=status, headers={
                "Replay-Nonce": server.new_nonce(), "Cache-Control": "no-store",
                "Link": f'<{urls.directory()}>;rel="index"'})

        return await guarded(request, work)

    @router.get("/renewal-info/{cert_id}")
    async def renewal(request: Request, cert_id: str) -> Response:
        async def work(urls: Urls) -> Response:
            reply = await run_in_threadpool(renewal_info, server, cert_id)
            headers: dict[str, Any] = dict(reply.headers or {})
            assert isinstance(reply.body, dict)
            return JSONResponse(reply.body, headers=headers)

        return await guarded(request, work)

    post_route("/new-account", Endpoint.NEW_ACCOUNT)
    post_route("/account/{rid}", Endpoint.ACCOUNT)
    post_route("/account/{rid}/orders", Endpoint.ORDERS)
    post_route("/key-change", Endpoint.KEY_CHANGE)
    post_route("/new-order", Endpoint.NEW_ORDER)
    post_route("/order/{rid}", Endpoint.ORDER)
    post_route("/order/{rid}/finalize", Endpoint.FINALIZE)
    post_route("/authz/{rid}", Endpoint.AUTHZ)
    post_route("/chall/{rid}", Endpoint.CHALLENGE)
    post_route("/cert/{rid}", Endpoint.CERTIFICATE)
    post_route("/cert/{rid}/{alt:int}", Endpoint.CERTIFICATE)
    post_route("/revoke-cert", Endpoint.REVOKE_CERT)

    @router.api_route("/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"],
                      include_in_schema=False)
    async def unknown(request: Request, rest: str) -> Response:
        async def work(urls: Urls) -> Response:
            allow = _READ_ONLY.get(rest) or ("GET" if rest.startswith("renewal-info/") else None)
            if allow and request.method not in allow.split(", "):  # exists; wrong method
                raise AcmeProblem(ProblemType.MALFORMED, f"/{rest[:100]} takes {allow}",
                                  status=405, headers={"Allow": allow})
            raise AcmeProblem(ProblemType.NOT_FOUND, f"no ACME resource at /{rest[:100]}")

        return await guarded(request, work)

    return router
