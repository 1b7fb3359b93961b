"""PKI publication routes: ``GET /crl/<issuer>.crl`` and ``/ocsp`` (GET per RFC 5019 and POST).

RFC 5019 §6: OCSP responses over GET are cacheable; ``Cache-Control: max-age`` runs to the
response's nextUpdate, with ``ETag``, ``Last-Modified`` and ``Expires``. Nonce-bearing
responses are per request and marked ``no-store``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import urllib.parse
from email.utils import format_datetime

from fastapi import APIRouter, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from certwarden.ca.ocsp import OcspAnswer
from certwarden.ca.publish import Publisher
from certwarden.errors import UsageError

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
MAX_OCSP_REQUEST = 64 * 1024  # real requests are ~100 bytes; refuse anything absurd


def _http_date(t: dt.datetime) -> str:
    return format_datetime(t.astimezone(dt.UTC), usegmt=True)


def _ocsp_headers(answer: OcspAnswer, now: dt.datetime) -> list[tuple[bytes, bytes]]:
    if answer.cacheable and answer.next_update and answer.this_update:
        max_age = max(0, int((answer.next_update - now).total_seconds()))
        etag = hashlib.sha1(answer.der, usedforsecurity=False).hexdigest()
        return [(b"cache-control", f"max-age={max_age}, public, no-transform, "
                                   f"must-revalidate".encode()),
                (b"last-modified", _http_date(answer.this_update).encode()),
                (b"expires", _http_date(answer.next_update).encode()),
                (b"etag", f'"{etag}"'.encode())]
    return [(b"cache-control", b"no-store")]


class OcspEndpoint:
    """A bare ASGI endpoint: OCSP is the hot path, so it skips FastAPI's request parsing and
    dependency machinery. Errors still raise into the app's one problem+json mapping."""

    def __init__(self, publisher: Publisher) -> None:
        self._responder = publisher.responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            body = bytearray()
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > MAX_OCSP_REQUEST:
                    raise UsageError("OCSP request too large")
            der = bytes(body)
        else:
            # RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}
            text = urllib.parse.unquote(scope["path_params"].get("encoded", ""))
            try:
                der = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
            except (binascii.Error, ValueError):
                der = b""
        answer = self._responder.respond(der)
        headers = [(b"content-type", OCSP_RESPONSE.encode()),
                   (b"content-length", str(len(answer.der)).encode()),
                   *_ocsp_headers(answer, dt.datetime.now(dt.UTC))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.der})


def router(publisher: Publisher) -> APIRouter:
    r = APIRouter(tags=["pki"])

    @r.get("/crl/{issuer}.crl")
    def get_crl(issuer: str) -> Response:
        crl = publisher.crl(issuer)
        now = dt.datetime.now(dt.UTC)
        max_age = max(0, int((crl.next_update - now).total_seconds()) // 2)
        return Response(crl.der, media_type="application/pkix-crl", headers={
            "Cache-Control": f"max-age={max_age}, public, no-transform",
            "Last-Modified": _http_date(crl.this_update),
            "Expires": _http_date(crl.next_update)})

    ocsp_endpoint = OcspEndpoint(publisher)
    r.routes.append(Route("/ocsp", ocsp_endpoint, methods=["POST"]))
    r.routes.append(Route("/ocsp/{encoded:path}", ocsp_endpoint, methods=["GET"]))
    return r
