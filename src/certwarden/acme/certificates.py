"""Finalize (CSR checks, issuance), certificate download, revocation, renewal information."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

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
from certwarden.errors import CertwardenError

# RFC 5280 reasons a subscriber may give (§7.6), as Let's Encrypt allows them: not 2
# (cACompromise), 6 (certificateHold: ACME revocation is final), 8 (removeFromCRL) or 10.
REVOCATION_REASONS = frozenset({0, 1, 3, 4, 5, 9})
EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def _bad_csr(why: str) -> AcmeProblem:
    return AcmeProblem(ProblemType.BAD_CSR, why)


def check_csr(der: bytes, order: Order, account_jwk: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The CSR's names equal the order's identifiers, its key is strong, its signature good."""
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise _bad_csr(f"CSR cannot be parsed: {exc}") from None
    if not csr.is_signature_valid:
        raise _bad_csr("CSR signature does not verify")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < jws.MIN_RSA_BITS:
            raise _bad_csr(f"RSA key of {key.key_size} bits is too small")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, EC_CURVES):
            raise _bad_csr(f"EC curve {key.curve.name} is not accepted")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise _bad_csr(f"key type {type(key).__name__} is not accepted")
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
    return sorted(dns_names), sorted(ips)


def _jwk_spki(jwk: dict[str, Any]) -> bytes | None:
    from joserfc.jwk import JWKRegistry

    try:
        key: Any = JWKRegistry.import_key(dict(jwk)).public_key
        return bytes(key.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    except Exception:  # joserfc raises many types for a malformed JWK: all mean "no key"
        return None


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(DER serial INTEGER body)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    body = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # keeps a leading 0x00
    return f"{jws.b64e(aki.key_identifier or b'')}.{jws.b64e(body)}"


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
    dns_names, ips = check_csr(jws.b64d(csr_b64, "csr"), order, dict(acct.jwk))
    if not srv.store.set_order_status_if(order.id, expect=("ready",), status="processing"):
        raise AcmeProblem(ProblemType.ORDER_NOT_READY, "order is already being finalized")
    try:
        issued = srv.issuer.issue(jws.b64d(csr_b64, "csr"), profile=order.profile,
                                  dns_names=dns_names, ip_addresses=ips,
                                  not_before=order.not_before, not_after=order.not_after)
        leaf = x509.load_pem_x509_certificate(issued.chain[0].encode("ascii"))
    except (CertwardenError, ValueError, IndexError) as exc:
        problem = AcmeProblem(ProblemType.BAD_CSR if isinstance(exc, CertwardenError)
                              else ProblemType.SERVER_INTERNAL, f"issuance refused: {exc}")
        srv.store.set_order_status_if(order.id, expect=("processing",), status="invalid",
                                      error=problem.as_dict())
        raise problem from None
    cert_id = secrets.token_urlsafe(12)
    srv.store.finish_order(order.id, {
        "id": cert_id, "order_id": order.id, "account_id": acct.id,
        "serial": format(leaf.serial_number, "x"),
        "sha256": hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
        "ari_id": ari_cert_id(leaf), "chain_pem": "".join(issued.chain),
        "alternates": ["".join(c) for c in issued.alternates],
        "not_before": leaf.not_valid_before_utc, "not_after": leaf.not_valid_after_utc})
    done = load_order(srv, acct, order.id)
    return Reply(body=order_json(done, ctx.urls), location=ctx.urls.order(order.id))


def download(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = auth.account
    assert acct is not None
    if not auth.msg.is_post_as_get:
        raise malformed("a certificate is downloaded with POST-as-GET (empty payload)")
    row = srv.store.certificate(ctx.resource_id)
    if row is None or row["account_id"] != acct.id:
        raise AcmeProblem(ProblemType.NOT_FOUND, "no such certificate for this account")
    cert = IssuedCertificate.from_row(row)
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
    row = srv.store.certificate_by(sha256=hashlib.sha256(der).hexdigest())
    if row is None:
        raise AcmeProblem(ProblemType.NOT_FOUND, "this server did not issue that certificate")
    if auth.account is not None:
        if row["account_id"] != auth.account.id:
            raise AcmeProblem(ProblemType.UNAUTHORIZED,
                              "the certificate belongs to another account")
    else:
        spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if _jwk_spki(dict(auth.jwk)) != spki:
            raise AcmeProblem(ProblemType.UNAUTHORIZED,
                              "the JWS key is neither the account's nor the certificate's")
    if row["revoked_at"] is not None:
        raise AcmeProblem(ProblemType.ALREADY_REVOKED, "the certificate is already revoked")
    # Claim the revocation first (compare-and-set) so two racing requests revoke once.
    if not srv.store.revoke_certificate_if(row["id"], reason=reason, at=utcnow()):
        raise AcmeProblem(ProblemType.ALREADY_REVOKED, "the certificate is already revoked")
    srv.issuer.revoke(int(row["serial"], 16), reason=reason)
    return Reply(status=200, body=None)


def renewal_info(srv: AcmeCore, cert_id: str, *, explanation: str | None = None) -> Reply:
    """RFC 9773: when to renew. The middle of the last third of life; now if revoked."""
    if "." not in cert_id:
        raise malformed("renewalInfo path is not an ARI certificate identifier")
    row = srv.store.certificate_by(ari_id=cert_id)
    if row is None:
        raise AcmeProblem(ProblemType.NOT_FOUND, "no certificate with that identifier")
    cert = IssuedCertificate.from_row(row)
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

