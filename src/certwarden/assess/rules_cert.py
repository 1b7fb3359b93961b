"""Rules over the certificate alone: validity, key, signature, names, serial, version."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator

from certwarden.assess import schedule
from certwarden.assess.finding import Hit
from certwarden.assess.rules_br import IpAddress, ip_value
from certwarden.assess.target import Target, is_local_name
from certwarden.x509 import Certificate, KeyType
from certwarden.x509.verify import Problem

WEAK_HASHES = frozenset({"md2", "md4", "md5", "sha1"})
MAX_SERIAL_OCTETS = 20  # RFC 5280 §4.1.2.2
# RFC 5280 §4.1.2.5: 99991231235959Z means "no well-defined expiration date".
NEVER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def _date(when: dt.datetime) -> str:
    if when.year >= 1000:  # isoformat is twice as fast and the same from year 1000 on
        return when.isoformat()[:19] + "Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")  # glibc does not pad the year to 4 digits


def _day(when: dt.datetime) -> str:
    """``f"{when:%Y-%m-%d}"``, four times faster."""
    if when.year >= 1000:
        return when.date().isoformat()
    return when.strftime("%Y-%m-%d")


def expired(t: Target) -> Iterator[Hit]:
    not_after = t.certificate.not_after
    if not_after < t.now:
        days = (t.now - not_after).days
        yield Hit(message=f"expired {days} day(s) ago, on {_day(not_after)}",
                  evidence={"not_after": _date(not_after)})


def not_yet_valid(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if c.not_before > t.now:
        yield Hit(message=f"not valid until {c.not_before:%Y-%m-%d %H:%M} UTC",
                  evidence={"not_before": _date(c.not_before)})


def expiring_soon(t: Target) -> Iterator[Hit]:
    """Less than a third of the lifetime left, and never more than the policy's window.

    ACME clients renew with a third of the lifetime left (certbot: 30 of 90 days); a
    certificate past that point without a renewal is late. The policy's
    ``expiring_soon_days`` caps the window for long-lived certificates, so a 398-day one is
    flagged 30 days ahead, not 132. A 30-day leaf is flagged with 10 days left, not from
    birth. A certificate that automation will renew (``Target.managed``) is not a finding.
    """
    c = t.certificate
    if c.not_after < t.now or t.managed:
        return  # already expired: not "soon"; managed: renewal is someone's job already
    window = expiry_window(c.not_before, c.not_after, t.policy.thresholds.expiring_soon_days)
    if c.not_after <= t.now + window:
        left = (c.not_after - t.now).days
        days = window.days
        yield Hit(message=f"expires in {left} day(s), on {_day(c.not_after)} "
                          f"(warned {days} day(s) ahead: a third of its lifetime, "
                          f"at most {t.policy.thresholds.expiring_soon_days})",
                  evidence={"not_after": _date(c.not_after), "threshold_days": str(days)})


def expiry_window(not_before: dt.datetime, not_after: dt.datetime,
                  cap_days: int) -> dt.timedelta:
    """How long before notAfter ``expiring-soon`` fires: a third of the lifetime, capped."""
    third = (not_after - not_before) / 3
    cap = dt.timedelta(days=cap_days)
    return min(third, cap) if third > dt.timedelta(0) else cap


def validity_too_long(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if not t.in_use_as_leaf:
        return  # judged by what it is used as: a CA:TRUE certificate served as leaf counts
    not_before, not_after = c.not_before, c.not_after
    ceiling = schedule.max_validity_days(not_before)
    private = t.policy.thresholds.private_max_validity_days
    source = None  # the CA/B ceiling unless the policy's is stricter (named only on a hit)
    if private is not None and private < ceiling and _is_private(t):
        ceiling, source = private, "the policy ceiling for private certificates"
    if schedule.exceeds(not_before, not_after, ceiling):
        if source is None:
            source = f"the CA/B ceiling for certificates issued {_day(not_before)}"
        # The same rounding as the test (BR §6.3.2: any part of a day is another day), so the
        # message never reads "200 days; the ceiling is 200 days".
        days = schedule.validity_days_rounded_up(not_before, not_after)
        yield Hit(message=f"valid for {days} days (counting a started day as a day); "
                          f"{source} is {ceiling} days",
                  evidence={"validity_days": str(days), "max_days": str(ceiling),
                            "not_before": _date(not_before), "not_after": _date(not_after)})


def _is_private(t: Target) -> bool:
    """Not anchored in the trust store: self-signed, self-issued, or an unknown root."""
    if t.certificate.self_issued:
        return True
    return t.chain is not None and Problem.UNKNOWN_ISSUER in t.chain.problems


def never_expires(t: Target) -> Iterator[Hit]:
    """Only RFC 5280's "no well-defined expiration date": notAfter 99991231235959Z.

    A merely long validity (20 years) is ``validity-too-long``, not this.
    """
    not_after = t.certificate.not_after
    if not_after == NEVER:
        yield Hit(message="notAfter is 99991231235959Z: no well-defined expiration date "
                          "(RFC 5280 §4.1.2.5), so it never expires",
                  evidence={"not_after": _date(not_after)})


# BR §6.1.5: the only curves a publicly-trusted certificate may use.
BR_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def weak_key(t: Target) -> Iterator[Hit]:
    k = t.certificate.key
    th = t.policy.thresholds
    if k.type == _RSA:
        if k.bits < th.min_rsa_bits:
            yield Hit(message=f"RSA key of {k.bits} bits (minimum {th.min_rsa_bits}; "
                              "BR §6.1.5: 2048)",
                      evidence={"key": f"{k.type} {k.curve or k.bits}"})
        elif k.bits % 8:
            yield Hit(message=f"RSA modulus of {k.bits} bits is not a multiple of 8 "
                              "(BR §6.1.5)", evidence={"key": f"{k.type} {k.bits}"})
    elif k.type == _EC:
        if k.bits < th.min_ec_bits:
            yield Hit(message=f"EC key on {k.curve} ({k.bits} bits, minimum {th.min_ec_bits}; "
                              "BR §6.1.5: P-256, P-384 or P-521)",
                      evidence={"key": f"{k.type} {k.curve or k.bits}"})
        elif k.curve not in BR_CURVES:
            yield Hit(message=f"EC key on {k.curve}: not one of P-256, P-384, P-521 "
                              "(BR §6.1.5)", evidence={"key": f"{k.type} {k.curve}"})
    elif k.type == _DSA:
        yield Hit(message=f"DSA key ({k.bits} bits): DSA is withdrawn (FIPS 186-5) and not "
                          "allowed (BR §6.1.5)",
                  evidence={"key": f"{k.type} {k.curve or k.bits}"})


_RSA, _EC, _DSA = KeyType.RSA, KeyType.EC, KeyType.DSA


def weak_signature(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if c.signature_hash not in WEAK_HASHES:
        return
    if t.self_signed and not t.in_use_as_leaf:
        return  # a trust anchor's own signature is never checked by anyone (RFC 5280 §6.1)
    yield Hit(message=f"signed with {c.signature_hash.upper()} ({c.signature_algorithm})",
              evidence={"signature_algorithm": c.signature_algorithm})


def _for_tls_server(c: Certificate) -> bool:
    # No EKU means any purpose; otherwise only serverAuth certs serve TLS. (anyExtendedKeyUsage
    # alone does not: the Web PKI verifier refuses it, "required EKU not found"; leaf-eku says.)
    return not c.extended_key_usage or "serverAuth" in c.extended_key_usage


def missing_san(t: Target) -> Iterator[Hit]:
    c = t.certificate
    sans = c.sans
    if sans.dns or sans.ip or not t.in_use_as_leaf:
        return
    if _for_tls_server(c):
        cn = f" (only CN={c.subject_cn})" if c.subject_cn else ""
        yield Hit(message=f"no DNS or IP subjectAltName{cn}",
                  evidence={"subject": c.subject})


def cn_not_in_san(t: Target) -> Iterator[Hit]:
    c = t.certificate
    cn = c.subject_cn
    sans = c.sans
    if not cn or not (sans.dns or sans.ip) or cn in sans.dns or cn in sans.ip:
        return  # (the CN written exactly as a SAN is the usual case: no need to normalise)
    names = {n.lower().rstrip(".") for n in sans.dns + sans.ip}
    ip = ip_value(cn)
    if ip is not None and any(_same_address(ip, v) for v in sans.ip):
        return  # the same address, spelled otherwise: ip-name-form says how
    if cn.lower().rstrip(".") not in names:
        yield Hit(message=f"CN={cn} is not among the subjectAltNames",
                  evidence={"cn": cn, "sans": ", ".join(sans.dns + sans.ip)})


def _same_address(ip: IpAddress, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False  # a netmask SAN (10.0.0.0/24) is no address


def wildcard(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if not t.in_use_as_leaf:
        return  # leaves only (a CA:TRUE certificate served as the leaf is one)
    dns = c.sans.dns
    names = [n for n in dns if n.startswith("*")] if dns else []
    if not names and not dns and c.subject_cn and c.subject_cn.startswith("*"):
        names = [c.subject_cn]
    if names:
        yield Hit(message=f"wildcard name(s): {', '.join(names)}",
                  evidence={"names": ", ".join(names)})


def v1_certificate(t: Target) -> Iterator[Hit]:
    if t.certificate.version == 1:
        yield Hit(message="X.509 version 1: no extensions, so no SAN, no CA flag, no key usage",
                  evidence={"version": "1"})


def serial_octets(serial: int) -> int:
    """Length of the DER INTEGER contents (two's complement, minimal)."""
    if serial >= 0:
        return serial.bit_length() // 8 + 1
    return (~serial).bit_length() // 8 + 1


def bad_serial(t: Target) -> Iterator[Hit]:
    n = t.certificate.serial
    if n > 0 and n.bit_length() < 8 * MAX_SERIAL_OCTETS:
        return  # positive and at most 20 octets: serial_octets(n) <= 20, the usual case
    ev = {"serial": format(n, "x") if n >= 0 else "-" + format(-n, "x")}
    if n == 0:
        yield Hit(message="serial number is zero", evidence=ev)
    elif n < 0:
        yield Hit(message="serial number is negative", evidence=ev)
    elif serial_octets(n) > MAX_SERIAL_OCTETS:
        yield Hit(message=f"serial number is {serial_octets(n)} octets (maximum 20)",
                  evidence=ev)


# Defaults left in by tools and appliances: (attribute text, where it comes from).
PLACEHOLDERS: tuple[tuple[str, str], ...] = (
    ("O=Internet Widgits Pty Ltd", "OpenSSL's openssl.cnf default"),
    ("ST=Some-State", "OpenSSL's openssl.cnf default"),
    ("O=Default Company Ltd", "RHEL/CentOS openssl.cnf default"),
    ("L=Default City", "RHEL/CentOS openssl.cnf default"),
    ("O=SomeOrganization", "RHEL mod_ssl / make-dummy-cert default"),
    ("OU=SomeOrganizationalUnit", "RHEL mod_ssl / make-dummy-cert default"),
    ("CN=localhost.localdomain", "RHEL mod_ssl default"),
    ("O=Acme Co", "Go crypto/tls generate_cert.go default"),
    ("O=My Company Name LTD.", "documentation example left in"),
    ("CN=FortiGate", "Fortinet appliance factory certificate"),
    ("O=Fortinet", "Fortinet appliance factory certificate"),
    ("CN=UniFi", "Ubiquiti UniFi controller default"),
    ("O=Ubiquiti Networks", "Ubiquiti appliance default"),
    ("O=Parallels", "Plesk default certificate"),
    ("CN=router.asus.com", "ASUS router default"),
)


def _attrs(subject: str) -> set[str]:
    # RFC 4514 text, split on unescaped commas; good enough to compare whole attributes.
    parts, cur, esc = [], [], False
    for ch in subject:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch in ",+":
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return {p.lower() for p in parts if p}


# Lower-cased placeholder values: a substring screen before the name is parsed. (A regex
# alternation with IGNORECASE measured ten times slower than these plain ``in`` tests, and
# a plain loop is faster than ``any()`` over a generator.)
_PLACEHOLDER_VALUES = tuple(sorted({text.split("=", 1)[1].lower() for text, _ in PLACEHOLDERS}))


def _may_hold_placeholder(subject: str) -> bool:
    low = subject.lower()
    for value in _PLACEHOLDER_VALUES:  # noqa: SIM110 - faster than any() over a generator
        if value in low:
            return True
    return False


def placeholder_subject(t: Target) -> Iterator[Hit]:
    c = t.certificate
    hits: list[tuple[str, str]] = []
    if _may_hold_placeholder(c.subject):
        attrs = _attrs(c.subject)
        hits = [(text, origin) for text, origin in PLACEHOLDERS if text.lower() in attrs]
    cn = c.subject_cn
    if cn and cn.lower() == "localhost":
        name = t.client_name
        if name is not None and not is_local_name(name):
            hits.append(("CN=localhost", f"served for the non-local name {name}"))
    if hits:
        yield Hit(message="placeholder subject: " + "; ".join(f"{a} ({o})" for a, o in hits),
                  evidence={"subject": c.subject})
