"""Assess 1,000,000 certificates, streamed: time and peak memory; ratio against pkilint.

    .venv/bin/python bench/assess.py [--count 1000000] [--tls-share 0.5]

The estate is made by varying the ~430 real certificates of the pkilint corpus
(../shared/corpora/pkilint): each variant gets its own fingerprint, serial, validity window,
key pin (1 in 500 reuses the previous one: key-reuse) and location (TLS with the issuer from
the corpus as its chain when there is one, else a file; 1 in 100 is also at a second place:
cert-sprawl with a threshold of 2). The DER is the real one, so chain verification does real
signature checks. Findings are counted as they come, as a streaming report would.

Peer: pkilint (``pip install pkilint``) linting the same real certificates with its CA/B
TLS linter; the ratio printed is pkilint's time per certificate over ours. pkilint checks
far more encoding rules and no estate-wide ones, so the ratio is a scale check, not a race.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from certwarden.assess import Estate, Policy, Thresholds
from certwarden.assess.engine import Assessor
from certwarden.errors import ParseError
from certwarden.records import Location, Sighting
from certwarden.x509 import Certificate, parse_bytes
from certwarden.x509.verify import TrustStore

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "pkilint"
NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def real_certificates() -> list[tuple[Certificate, str]]:
    out = []
    for path in sorted(CORPUS.glob("integration_certificate/**/*.crttest")):
        pem = path.read_bytes().split(b"\n\n")[0]
        try:
            out.append((parse_bytes(pem, source=path.name).certificates[0], pem.decode()))
        except ParseError:
            continue  # a handful cryptography refuses; pkilint reads them raw
    return out


_DECODED = ("_names", "_ext", "key", "signature_hash")  # Certificate's decode-on-first-use parts


def estate(reals: list[Certificate], count: int, tls_share: float,
           warm: bool = True) -> Iterator[Sighting]:
    by_subject = {c.subject: c for c in reals if c.is_ca}
    n_real = len(reals)
    tls_every = max(1, round(1 / tls_share)) if tls_share > 0 else 0
    for i in range(count):
        base = reals[i % n_real]
        shift = dt.timedelta(days=(i * 7919) % 900 - 450)
        spki = f"pin-{i - 1 if i % 500 == 1 else i}"
        cert = dataclasses.replace(
            base, sha256=f"{i:064x}", serial=base.serial + i, spki_sha256=spki,
            not_before=base.not_before + shift, not_after=base.not_after + shift)
        if warm:  # share the base's decoded names/extensions: measure rules, not parsing
            cert.__dict__.update({k: base.__dict__[k] for k in _DECODED if k in base.__dict__})
        issuer = by_subject.get(base.issuer)
        if tls_every and i % tls_every == 0 and not base.is_ca:
            loc = Location.tls(f"h{i}.corp.test", 443)
            chain = (issuer,) if issuer is not None and issuer != base else ()
            yield Sighting(certificate=cert, location=loc, seen_at=NOW, chain=chain)
        else:
            yield Sighting(certificate=cert, location=Location.file(f"/srv/{i}/cert.pem"),
                           seen_at=NOW)
        if i % 100 == 0:
            yield Sighting(certificate=cert, location=Location.file(f"/backup/{i}.pem"),
                           seen_at=NOW)


def bench_ours(reals: list[Certificate], count: int, tls_share: float,
               warm: bool = True) -> dict[str, float]:
    anchors = [c for c in reals if c.is_ca and c.kind == "self-signed"]
    trust = TrustStore.of(anchors, name="corpus roots")
    policy = Policy(thresholds=Thresholds(cert_sprawl_locations=2))

    t0 = time.perf_counter()
    generated = sum(1 for _ in estate(reals, count, tls_share, warm))
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    index = Estate.build(estate(reals, count, tls_share, warm))
    t_index = time.perf_counter() - t0

    gc.collect()
    assessor = Assessor(policy=policy, trust=trust, estate=index, now=NOW)
    by_rule: Counter[str] = Counter()
    t0 = time.perf_counter()
    for s in estate(reals, count, tls_share, warm):
        for f in assessor.assess(s.certificate, s):
            by_rule[f.rule] += 1
    t_rules = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = t_index + t_rules - 2 * t_gen  # both passes regenerate the estate: not ours
    print(f"certificates {index.certificate_count:,}, sightings {generated:,} "
          f"(TLS share {tls_share:.0%}; "
          + ("records already decoded" if warm else "names/extensions decoded on first use")
          + ")")
    print(f"  generating the variants (excluded): {t_gen:6.1f} s per pass")
    print(f"  estate index pass:                  {t_index - t_gen:6.1f} s")
    print(f"  rules pass:                         {t_rules - t_gen:6.1f} s")
    print(f"  assessment total:                   {total:6.1f} s  "
          f"({total / generated * 1e6:.1f} us per sighting)")
    print(f"  peak RSS (whole process):           {peak_mb:6.0f} MB")
    print(f"  findings: {sum(by_rule.values()):,}; top: "
          + ", ".join(f"{k} {v:,}" for k, v in by_rule.most_common(6)))
    return {"per_cert_s": total / generated, "total_s": total, "peak_mb": peak_mb}


def bench_pkilint(pems: list[str]) -> float | None:
    try:
        from pkilint import loader
        from pkilint.cabf import serverauth
        from pkilint.pkix import certificate
    except ImportError:
        print("pkilint is not installed (pip install pkilint): no peer ratio")
        return None
    docs = []
    for pem in pems:
        try:
            docs.append(loader.RFC5280CertificateDocumentLoader().load_pem_document(pem, "c"))
        except ValueError:
            continue
    validators: dict[object, object] = {}  # built once per certificate type, not per cert
    t0 = time.perf_counter()
    done = 0
    for doc in docs:
        try:
            kind = serverauth.determine_certificate_type(doc)
            if kind not in validators:
                validators[kind] = certificate.create_pkix_certificate_validator_container(
                    serverauth.create_decoding_validators(), serverauth.create_validators(kind))
            validators[kind].validate(doc.root)  # type: ignore[attr-defined]
            done += 1
        except Exception:  # noqa: S112 - pkilint crashes on some (the 9999 expiry)
            continue
    per = (time.perf_counter() - t0) / max(done, 1)
    print(f"pkilint {done} real certificates: {per * 1e3:.2f} ms per certificate "
          f"({len(docs) - done} crashed)")
    return per


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--tls-share", type=float, default=0.5)
    ap.add_argument("--cold", action="store_true",
                    help="Each variant decodes its names and extensions on first use, as a "
                         "record fresh from the inventory does (includes parsing cost).")
    args = ap.parse_args()
    if not CORPUS.exists():
        print(f"corpus {CORPUS} missing", file=sys.stderr)
        return 2
    pairs = real_certificates()
    reals = [c for c, _ in pairs]
    print(f"{len(reals)} real certificates from the pkilint corpus")
    for c in reals:  # decode the real ones once, so warm variants can share it
        _ = (c.subject, c.sans, c.key, c.signature_hash)
    ours = bench_ours(reals, args.count, args.tls_share, warm=not args.cold)
    peer = bench_pkilint([p for _, p in pairs])
    at_1m = ours["per_cert_s"] * 1_000_000
    goal = "met" if at_1m < 60 and ours["peak_mb"] < 2048 else "NOT met"
    print(f"goal (< 60 s, < 2 GB for 1,000,000): {goal} "
          f"({at_1m:.0f} s at this rate, peak {ours['peak_mb']:.0f} MB for {args.count:,})")
    if peer:
        print(f"ratio pkilint / certwarden, time per certificate: "
              f"{peer / ours['per_cert_s']:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
