"""Rules over a certificate where it is used, and across the estate.

Location rules see the chain the server presented (verified by ``certwarden.x509.verify``),
the name the client used, and the key file beside a stored certificate. Estate rules read the
``Estate`` index built over the whole inventory.
"""

from __future__ import annotations

from collections.abc import Iterator

from certwarden.assess.finding import Hit
from certwarden.assess.target import Target
from certwarden.records import KeyFile
from certwarden.x509 import Kind
from certwarden.x509.verify import DEFAULT_MAX_DEPTH, Problem, matches_hostname, path_depth

_GROUP_WORLD = 0o077
# Module constants: enum attribute lookups cost on every sighting.
_SELF_ISSUED = Kind.SELF_ISSUED
_UNKNOWN_ISSUER, _INCOMPLETE_CHAIN = Problem.UNKNOWN_ISSUER, Problem.INCOMPLETE_CHAIN
_BAD_SIGNATURE, _WEAK_SIGNATURE = Problem.BAD_SIGNATURE, Problem.WEAK_SIGNATURE
_PATH_TOO_LONG = Problem.PATH_TOO_LONG


def _served_self_signed(t: Target) -> bool:
    return t.self_signed and t.in_use_as_leaf


def self_signed(t: Target) -> Iterator[Hit]:
    if _served_self_signed(t):
        how = "served to clients" if t.served else "an end-entity certificate in use"
        yield Hit(message=f"self-signed ({how}): no client can verify who issued it",
                  evidence={"subject": t.certificate.subject or "(empty)"})


def self_issued_unverifiable(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if c.kind != _SELF_ISSUED or not t.in_use_as_leaf:
        return
    if t.chain is not None and len(t.chain.chain) > 1:
        return  # its issuer (an older key of the same name) was found
    yield Hit(message="subject equals issuer, but its own key does not verify its signature "
                      "and no issuer was found",
              evidence={"issuer": c.issuer or "(empty)"})


def _chain_checked(t: Target) -> bool:
    return t.chain is not None and t.served and not t.self_signed


def untrusted_chain(t: Target) -> Iterator[Hit]:
    if not _chain_checked(t):
        return
    v = t.chain
    assert v is not None
    if t.certificate.self_issued and len(v.chain) == 1:
        return  # self-issued-unverifiable says it
    problems = v.problems  # a handful at most: tuple membership is as quick as a set's
    reasons = []
    evidence: dict[str, str] = {}
    if _UNKNOWN_ISSUER in problems and _INCOMPLETE_CHAIN not in problems:
        top = v.chain[-1] if v.chain else t.certificate
        if top.self_issued:
            reasons.append(f"the chain ends at the root {top.subject or '(empty)'}, which is "
                           "not a trust anchor")
            evidence["root_needed"] = top.subject or "(empty)"
        else:
            # Leaf + intermediate, root left out as it should be: name the root to trust.
            reasons.append(f"the chain ends at {top.subject or '(empty)'}, issued by "
                           f"{top.issuer or '(empty)'}, which is not a trust anchor (trust that "
                           "root to accept the chain)")
            evidence["root_needed"] = top.issuer or "(empty)"
    # verify_chain also files the path builder's refusal under these two; a SHA-1/MD5 chain
    # (weak-signature says it) and a CA served as leaf (ca-cert-served-as-leaf) are not them.
    if _BAD_SIGNATURE in problems and _WEAK_SIGNATURE not in problems:
        reasons.append("a signature in the chain does not verify")
    issuers = v.chain[1:]
    for issuer in issuers:
        if not issuer.is_ca:
            reasons.append("an issuer in the chain is not a CA")
            break
    for issuer in issuers:
        if issuer.not_after < t.now:
            reasons.append(f"issuer {issuer.subject} expired {issuer.not_after:%Y-%m-%d}")
        elif issuer.not_before > t.now:
            reasons.append(f"issuer {issuer.subject} is not yet valid")
    if reasons:
        yield Hit(message="untrusted chain: " + "; ".join(reasons),
                  evidence={"problems": ", ".join(sorted(set(problems))),
                            "chain": " > ".join(c.subject or "(empty)" for c in v.chain),
                            **evidence})


def path_too_long(t: Target) -> Iterator[Hit]:
    """Longer than verifiers build, or than an issuer's pathLenConstraint allows."""
    if not _chain_checked(t):
        return
    v = t.chain
    assert v is not None
    if _PATH_TOO_LONG not in v.problems:
        return
    presented = 1 + len(t.sighting.chain if t.sighting else ())
    depth = path_depth(v.chain)
    ev = {"presented": str(presented), "intermediates": str(depth),
          "top": v.chain[-1].subject or "(empty)"}
    if depth > DEFAULT_MAX_DEPTH:
        yield Hit(message=f"{presented} certificate(s) presented: the path from the leaf to "
                          f"{ev['top']} holds {depth} intermediates, more than the "
                          f"{DEFAULT_MAX_DEPTH} that clients build",
                  evidence={**ev, "max_intermediates": str(DEFAULT_MAX_DEPTH)})
    else:
        yield Hit(message=f"{presented} certificate(s) presented: the path holds {depth} "
                          "intermediate(s), more than an issuer's pathLenConstraint allows",
                  evidence=ev)


def incomplete_chain(t: Target) -> Iterator[Hit]:
    if not _chain_checked(t):
        return
    v = t.chain
    assert v is not None
    if Problem.INCOMPLETE_CHAIN in v.problems:
        top = v.chain[-1] if v.chain else t.certificate
        yield Hit(message=f"incomplete chain: the issuer of {top.subject or '(empty)'} "
                          f"({top.issuer}) was not presented",
                  evidence={"missing_issuer": top.issuer,
                            "presented": str(1 + len(t.sighting.chain if t.sighting else ()))})


def hostname_mismatch(t: Target) -> Iterator[Hit]:
    name = t.client_name
    if name is None or not t.named or matches_hostname(t.certificate, name):
        return  # reached by a bare IP without SNI: no name to check (the scan says so once)
    c = t.certificate
    if c.sans:
        names = ", ".join(c.sans.dns + c.sans.ip) or "no DNS or IP name"
    else:
        # RFC 6125 §6.4.4: the CN is a fallback for DNS names only, never for an IP address.
        names = f"no subjectAltName, only CN={c.subject_cn}" if c.subject_cn else "no name"
    yield Hit(message=f"the client asked for {name}; the certificate covers {names}",
              evidence={"client_name": name, "certificate_names": names})


def ca_cert_served_as_leaf(t: Target) -> Iterator[Hit]:
    if t.served and t.certificate.is_ca:
        yield Hit(message="a CA certificate (basicConstraints CA:TRUE) is served as the leaf",
                  evidence={"basic_constraints": "CA:TRUE"})


def _key_evidence(t: Target) -> tuple[KeyFile, dict[str, str]] | None:
    key = t.sighting.key if t.sighting else None
    if key is None:
        return None
    ev = {"key_path": key.path, "encrypted": str(key.encrypted).lower()}
    if key.mode is not None:
        ev["mode"] = f"{key.mode & 0o777:04o}"
    return key, ev


def _exposed(key: KeyFile) -> bool:
    return key.mode is not None and bool(key.mode & _GROUP_WORLD)


def private_key_exposed(t: Target) -> Iterator[Hit]:
    found = _key_evidence(t)
    if found is None:
        return
    key, ev = found
    if key.mode is not None and _exposed(key):
        mode = key.mode & 0o777
        who = "world" if mode & 0o007 else "group"
        yield Hit(message=f"private key {key.path} is readable by {who} (mode {mode:04o})",
                  evidence=ev)


def private_key_unencrypted(t: Target) -> Iterator[Hit]:
    """Owner-only but in clear: how nearly every server key is kept, so low, not exposed."""
    found = _key_evidence(t)
    if found is None:
        return
    key, ev = found
    if not key.encrypted and not _exposed(key):
        who = f" (owner {key.owner})" if key.owner else ""
        yield Hit(message=f"private key {key.path} is readable only by its owner{who} but "
                          "stored unencrypted: whoever gets the file (a backup, root) has it",
                  evidence=ev)


def shadow_certificate(t: Target) -> Iterator[Hit]:
    if _served_self_signed(t) and t.owner is None:
        yield Hit(message="self-signed and no owner is known for this location",
                  evidence={"location": t.location or "(none)"})


def key_reuse(t: Target) -> Iterator[Hit]:
    c = t.certificate
    if c.is_ca or not c.spki_sha256:
        return
    count = t.estate.key_count.get(c.spki_sha256, 0)
    if count > 1:
        others = [s for s in t.estate.key_certs.get(c.spki_sha256, ()) if s != c.sha256]
        yield Hit(message=f"the same key is in {count} different certificates",
                  evidence={"spki_sha256": c.spki_sha256, "certificates": str(count),
                            "others": ", ".join(others)})


def cert_sprawl(t: Target) -> Iterator[Hit]:
    if t.certificate.is_ca:
        return  # a CA certificate in many bundles is trust being distributed, not a key
    n = t.estate.locations.get(t.certificate.sha256, 0)
    limit = t.policy.thresholds.cert_sprawl_locations
    if n >= limit:
        yield Hit(message=f"the same certificate is at {n} locations (threshold {limit})",
                  evidence={"locations": str(n), "threshold": str(limit)})


def revoked(t: Target) -> Iterator[Hit]:
    """Its CA says it is revoked: our own ledger, a verified CRL or OCSP answer (engine)."""
    index = t.revocations
    if index is None:
        return
    c = t.certificate
    path = t.chain.chain if t.chain is not None else (c,)
    issuer = path[1] if len(path) > 1 else None
    hit = index.lookup(c, issuer, t.now)
    where = "it is"
    if hit is None and t.served:
        # An issuer of the served chain revoked is every leaf under it revoked.
        for i, child in enumerate(path[1:], start=1):
            hit = index.lookup(child, path[i + 1] if i + 1 < len(path) else None, t.now)
            if hit is not None:
                where = f"its issuer {child.subject} is"
                break
    if hit is None:
        return
    why = f" ({hit.reason})" if hit.reason else ""
    yield Hit(message=f"{where} revoked since {hit.revoked_at:%Y-%m-%d %H:%M}Z{why}, "
                      f"per {hit.source} {hit.origin}",
              evidence={"serial": format(hit.serial, "x"), "revoked_at":
                        hit.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "reason": hit.reason or "unspecified", "source": str(hit.source),
                        "origin": hit.origin})


def no_check(t: Target) -> Iterator[Hit]:
    """Policy-scope rules are about the policy, not a certificate (see engine)."""
    return iter(())
