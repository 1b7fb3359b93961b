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

from fastapi import APIRouter, Request, Response

from certwarden.ca.ocsp import OcspAnswer
from certwarden.ca.publish import Publisher
from certwarden.errors import UsageError

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
MAX_OCSP_REQUEST = 64 * 1024  # real requests are ~100 bytes; refuse anything absurd


def _http_date(t: dt.datetime) -> str:
    return format_datetime(t.astimezone(dt.UTC), usegmt=True)


def _ocsp_response(answer: OcspAnswer, now: dt.datetime) -> Response:
    headers = {}
    if answer.cacheable and answer.next_update and answer.this_update:
        max_age = max(0, int((answer.next_update - now).total_seconds()))
        headers = {"Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
                   "Last-Modified": _http_date(answer.this_update),
                   "Expires": _http_date(answer.next_update),
                   "ETag": '"' + hashlib.sha1(answer.der, usedforsecurity=False).hexdigest() + '"'}
    else:
        headers = {"Cache-Control": "no-store"}
    return Response(answer.der, media_type=OCSP_RESPONSE, headers=headers)


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

    @r.post("/ocsp")
    async def post_ocsp(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_OCSP_REQUEST:
            raise UsageError("OCSP request too large")
        return _ocsp_response(publisher.responder.respond(body), dt.datetime.now(dt.UTC))

    @r.get("/ocsp/{encoded:path}")
    async def get_ocsp(encoded: str) -> Response:
        # RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}
        text = urllib.parse.unquote(encoded)
        try:
            der = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
        except (binascii.Error, ValueError):
            der = b""
        return _ocsp_response(publisher.responder.respond(der), dt.datetime.now(dt.UTC))

    return r
