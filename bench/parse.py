"""Parse + full record + classify, against cryptography's bare DER load, on the same input.

Input: every readable certificate of the pkilint and x509-limbo corpora (real, varied: RSA,
EC, Ed25519, ML-DSA, self-signed and issued), repeated to >= N certificates. Both rates are
measured in this one process, one core, so the ratio is what matters.

    .venv/bin/python bench/parse.py [N]
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

from cryptography import x509 as cx509

from certwarden.errors import ParseError
from certwarden.x509 import Certificate, Kind, parse_bytes

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"


def corpus_ders() -> list[bytes]:
    ders: list[bytes] = []
    for path in sorted((CORPORA / "pkilint" / "integration_certificate").rglob("*.crttest")):
        try:
            parsed = parse_bytes(path.read_bytes(), source=str(path))
            ders.extend(c.der for c in parsed.certificates)
        except ParseError:
            continue
    limbo = json.loads((CORPORA / "x509-limbo" / "limbo.json").read_text())
    for case in limbo["testcases"]:
        for pem in [*case["trusted_certs"], *case["untrusted_intermediates"],
                    case["peer_certificate"]]:
            try:
                ders.extend(c.der for c in parse_bytes(pem.encode()).certificates)
            except ParseError:
                continue
    return list(dict.fromkeys(ders))


def main() -> None:
    # Negative serials etc. in the corpus: cryptography warns; the record keeps it as a problem.
    warnings.simplefilter("ignore")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    base = corpus_ders()
    reps = -(-n // len(base))
    ders = (base * reps)[:n]
    self_signed = sum(Certificate.from_der(d).kind is Kind.SELF_SIGNED for d in base)
    print(f"input: {len(ders)} certificates ({len(base)} distinct, {self_signed} self-signed)")

    t0 = time.perf_counter()
    for der in ders:
        cx509.load_der_x509_certificate(der)
    bare = len(ders) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    kinds = dict.fromkeys(Kind, 0)
    for der in ders:
        kinds[Certificate.from_der(der).kind] += 1
    full = len(ders) / (time.perf_counter() - t0)

    # Every DER distinct: the last signature byte flipped, so nothing repeats and every
    # self-issued certificate pays a real signature check (which now fails: self-issued).
    distinct = [d[:-1] + bytes([d[-1] ^ (1 + i % 254)]) for i, d in enumerate(ders)]
    distinct = list(dict.fromkeys(distinct))
    t0 = time.perf_counter()
    for der in distinct:
        cx509.load_der_x509_certificate(der)
    bare_d = len(distinct) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for der in distinct:
        Certificate.from_der(der)
    full_d = len(distinct) / (time.perf_counter() - t0)

    print("                                   repeated corpus     all-distinct DER")
    print(f"cryptography load_der_x509_certificate: {bare:10,.0f}/s {bare_d:14,.0f}/s")
    print(f"certwarden Certificate.from_der (full): {full:10,.0f}/s {full_d:14,.0f}/s")
    print(f"ratio certwarden/bare:                  {full / bare:10.3f}   {full_d / bare_d:14.3f}")
    print("goal: >= 25,000 certs/s per core and >= 0.10 of the bare load rate")
    print(f"kinds (repeated corpus): { {str(k): v for k, v in kinds.items()} }")


if __name__ == "__main__":
    main()
