"""Finalize (CSR checks, issuance), certificate download, revocation, renewal information."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certwarden.acme import jws
from certwarden.acme.context import AcmeCore, Authenticated, RequestContext
from certwarden.acme.model import (
    IdentifierType,
    IssuedCertificate,
    Order,
    OrderStatus,
    rfc3339,
    utcnow,
)
from certwarden.acme.orders import load_order, order_json
from certwarden.acme.problems import AcmeProblem, ProblemType, malformed
from certwarden.acme.wire import Reply
from certwarden.ca.csr import LeafKey, check_key, load_csr
from certwarden.ca.model import ari_id
from certwarden.errors import CertwardenError

# RFC 5280 reasons a subscriber may give (§7.6), as Let's Encrypt allows them: not 2
# (cACompromise), 6 (certificateHold: ACME revocation is final), 8 (removeFromCRL) or 10.
REVOCATION_REASONS = frozenset({0, 1, 3, 4, 5, 9})


def _bad_csr(why: str) -> AcmeProblem:
    return AcmeProblem(ProblemType.BAD_CSR, why)


def check_csr(der: bytes, order: Order, account_jwk: dict[str, Any]
              ) -> tuple[LeafKey, list[str], list[str]]:
    """The CSR's names equal the order's identifiers, its signature is good and its key
    passes the CA's one key policy (``ca.csr.check_key``): (key, DNS names, IP addresses).
    The CSR is parsed and its signature verified here, once; the CA gets the checked key."""
    try:
        csr = load_csr(der)
        key = check_key(csr.public_key())
    except CertwardenError as exc:
        raise _bad_csr(str(exc)) from None
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if _jwk_spki(account_jwk) == spki:
        raise _bad_csr("the certificate key must not be the account key (RFC 8555 §11.1)")
    dns_names: set[str] = set()
    ips: set[str] = set()
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = {n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)}
        ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        pass
    except ValueError as exc:
        raise _bad_csr(f"CSR extensions cannot be read: {exc}") from None
    for attr in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        cn = str(attr.value).lower().rstrip(".")
        try:
            ips.add(str(ipaddress.ip_address(cn)))
        except ValueError:
            dns_names.add(cn)
    want_dns = {i.value for i in order.identifiers if i.type == IdentifierType.DNS}
    want_ip = {i.value for i in order.identifiers if i.type == IdentifierType.IP}
    if dns_names != want_dns or ips != want_ip:
        extra = sorted((dns_names - want_dns) | (ips - want_ip))
        missing = sorted((want_dns - dns_names) | (want_ip - ips))
        raise _bad_csr("CSR names differ from the order's identifiers"
                       + (f"; not in the order: {', '.join(extra)}" if extra else "")
                       + (f"; missing: {', '.join(missing)}" if missing else ""))
    return key, sorted(dns_names), sorted(ips)


def _jwk_spki(jwk: dict[str, Any]) -> bytes | None:
    from joserfc.jwk import JWKRegistry

    try:
        key: Any = JWKRegistry.import_key(dict(jwk)).public_key
        return bytes(key.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    except Exception:  # joserfc raises many types for a malformed JWK: all mean "no key"
        return None


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1 identifier of a parsed certificate (the CA's ``ari_id`` formula)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    return ari_id(aki.key_identifier or b"", cert.serial_number)


def chain_pem(ders: tuple[bytes, ...]) -> str:
    """DER certificates as one PEM text (what certificate download serves), unparsed."""
    return "".join(ssl.DER_cert_to_PEM_cert(d) for d in ders)


def finalize(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = auth.account
    assert acct is not None
    order = load_order(srv, acct, ctx.resource_id)
    payload = auth.msg.payload_json()
    if order.status != OrderStatus.READY:
        raise AcmeProblem(ProblemType.ORDER_NOT_READY,
                          f"order is {order.status.value}, not ready")
    csr_b64 = payload.get("csr")
    if not isinstance(csr_b64, str):
        raise malformed("finalize needs a 'csr' (base64url DER)")
    key, dns_names, ips = check_csr(jws.b64d(csr_b64, "csr"), order, dict(acct.jwk))
    if not srv.store.set_order_status_if(order.id, expect=("ready",), status="processing"):
        raise AcmeProblem(ProblemType.ORDER_NOT_READY, "order is already being finalized")
    try:
        issued = srv.issuer.issue(key, profile=order.profile,
                                  dns_names=dns_names, ip_addresses=ips,
                                  not_before=order.not_before, not_after=order.not_after)
    except (CertwardenError, ValueError) as exc:
        problem = AcmeProblem(ProblemType.BAD_CSR if isinstance(exc, CertwardenError)
                              else ProblemType.SERVER_INTERNAL, f"issuance refused: {exc}")
        srv.store.set_order_status_if(order.id, expect=("processing",), status="invalid",
                                      error=problem.as_dict())
        raise problem from None
    cert_id = secrets.token_urlsafe(12)
    srv.store.finish_order(order.id, IssuedCertificate(
        id=cert_id, order_id=order.id, account_id=acct.id, serial=format(issued.serial, "x"),
        sha256=issued.sha256, ari_id=issued.ari_id,
        chain_pem=chain_pem((issued.leaf_der, *issued.chain_der)),
        alternates=tuple(chain_pem((issued.leaf_der, *alt)) for alt in issued.alternates),
        not_before=issued.not_before, not_after=issued.not_after))
    done = load_order(srv, acct, order.id)
    return Reply(body=order_json(done, ctx.urls), location=ctx.urls.order(order.id))


def download(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = auth.account
    assert acct is not None
    if not auth.msg.is_post_as_get:
        raise malformed("a certificate is downloaded with POST-as-GET (empty payload)")
    cert = srv.store.certificate(ctx.resource_id)
    if cert is None or cert.account_id != acct.id:
        raise AcmeProblem(ProblemType.NOT_FOUND, "no such certificate for this account")
    chains = (cert.chain_pem, *cert.alternates)
    if not 0 <= ctx.alternate < len(chains):
        raise AcmeProblem(ProblemType.NOT_FOUND, "no such alternate chain")
    links = tuple((ctx.urls.certificate(cert.id, n), "alternate")
                  for n in range(len(chains)) if n != ctx.alternate)
    return Reply(body=chains[ctx.alternate].encode("ascii"),
                 content_type="application/pem-certificate-chain",
                 links=((ctx.urls.directory(), "index"), *links))


def revoke(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    payload = auth.msg.payload_json()
    raw = payload.get("certificate")
    if not isinstance(raw, str):
        raise malformed("revokeCert needs a 'certificate' (base64url DER)")
    der = jws.b64d(raw, "certificate")
    reason = payload.get("reason", 0)
    if not isinstance(reason, int) or isinstance(reason, bool) or reason not in REVOCATION_REASONS:
        raise AcmeProblem(ProblemType.BAD_REVOCATION_REASON, f"reason {reason!r} is not accepted")
    cert = srv.store.certificate_by(sha256=hashlib.sha256(der).hexdigest())
    if cert is None:
        raise AcmeProblem(ProblemType.NOT_FOUND, "this server did not issue that certificate")
    if auth.account is not None:
        if cert.account_id != auth.account.id:
            raise AcmeProblem(ProblemType.UNAUTHORIZED,
                              "the certificate belongs to another account")
    else:
        spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if _jwk_spki(dict(auth.jwk)) != spki:
            raise AcmeProblem(ProblemType.UNAUTHORIZED,
                              "the JWS key is neither the account's nor the certificate's")
    if cert.revoked_at is not None:
        raise AcmeProblem(ProblemType.ALREADY_REVOKED, "the certificate is already revoked")
    # Claim the revocation first (compare-and-set) so two racing requests revoke once.
    if not srv.store.revoke_certificate_if(cert.id, reason=reason, at=utcnow()):
        raise AcmeProblem(ProblemType.ALREADY_REVOKED, "the certificate is already revoked")
    srv.issuer.revoke(int(cert.serial, 16), reason=reason)
    return Reply(status=200, body=None)


def renewal_info(srv: AcmeCore, cert_id: str, *, explanation: str | None = None) -> Reply:
    """RFC 9773: when to renew. The middle of the last third of life; now if revoked."""
    if "." not in cert_id:
        raise malformed("renewalInfo path is not an ARI certificate identifier")
    cert = srv.store.certificate_by(ari_id=cert_id)
    if cert is None:
        raise AcmeProblem(ProblemType.NOT_FOUND, "no certificate with that identifier")
    now = utcnow()
    if cert.revoked_at is not None:
        start, end = now - dt.timedelta(hours=1), now
    else:
        life = cert.not_after - cert.not_before
        start = cert.not_before + life * 2 / 3
        end = cert.not_before + life * 5 / 6
    body: dict[str, Any] = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
    if explanation:
        body["explanationURL"] = explanation
    return Reply(body=body, headers={"Retry-After": "21600"})  # RFC 9773 suggests ~6 h

