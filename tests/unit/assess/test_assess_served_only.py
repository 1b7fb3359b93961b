"""``Rule.served_only``: the engine skips those rules for anything but a served leaf, so they
must never fire there. Checked by calling every such rule directly on unserved targets made of
the worst certificates we can forge (CA as leaf, wrong name, untrusted and incomplete chain)."""

from __future__ import annotations

import datetime as dt

from certwarden.assess import RULES, Estate, Policy, Target
from certwarden.assess.engine import Assessor
from certwarden.cli.demo_forge import forge
from certwarden.records import Location, Sighting
from certwarden.x509.verify import TrustStore

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_served_only_rules_fire_only_on_a_served_leaf() -> None:
    root = forge(subject="CN=Unknown Root", sans=(), ca=True, not_before=NOW - 9 * DAY,
                 days=3650)
    inter = forge(subject="CN=Unknown Issuing", sans=(), ca=True, issuer=root,
                  not_before=NOW - 9 * DAY, days=1000)
    leaf = forge(subject="CN=a.example.test", sans=("a.example.test",), issuer=inter,
                 not_before=NOW - DAY, days=90)
    ca_leaf = forge(subject="CN=b.example.test", sans=("b.example.test",), ca=True,
                    issuer=inter, not_before=NOW - DAY, days=90)
    trust = TrustStore.of([forge(subject="CN=Other Root", sans=(), ca=True,
                                 not_before=NOW - DAY, days=365).certificate], name="other")
    served_only = [r for r in RULES if r.served_only]
    assert {r.id for r in served_only} == {"untrusted-chain", "incomplete-chain",
                                           "hostname-mismatch", "ca-cert-served-as-leaf",
                                           "path-too-long"}
    # pathLenConstraint 0 on ``inter``, and yet a CA under it: a path one CA too long.
    len0 = forge(subject="CN=Len0 Issuing", sans=(), ca=True, issuer=root, path_length=0,
                 not_before=NOW - 9 * DAY, days=1000)
    sub = forge(subject="CN=Len0 Sub", sans=(), ca=True, issuer=len0,
                not_before=NOW - 9 * DAY, days=900)
    deep = forge(subject="CN=c.example.test", sans=("c.example.test",), issuer=sub,
                 not_before=NOW - DAY, days=90)
    fired_served: set[str] = set()
    for f, full_chain in ((leaf, (inter, root)), (ca_leaf, (inter, root)),
                          (deep, (sub, len0, root))):
        where = Location.tls("wrong.example.test", 443)
        full = tuple(c.certificate for c in full_chain)
        served = (  # an incomplete chain, and a complete one to an unknown root
            Sighting(certificate=f.certificate, location=where, seen_at=NOW),
            Sighting(certificate=f.certificate, location=where, seen_at=NOW, chain=full),
        )
        unserved = (
            Sighting(certificate=f.certificate, location=Location.file("/x.pem"), seen_at=NOW),
            Sighting(certificate=f.certificate, location=Location.file("/y.pem"), seen_at=NOW,
                     chain=full),
            Sighting(certificate=f.certificate, location=where, seen_at=NOW, position=1),
            Sighting(certificate=f.certificate, location=where, seen_at=NOW, position=1,
                     chain=full),
        )
        for s in (*served, *unserved):
            estate = Estate.build([s])
            a = Assessor(policy=Policy(), trust=trust, estate=estate, now=NOW)
            t = Target(certificate=s.certificate, sighting=s, estate=estate, policy=Policy(),
                       now=NOW, chain=a._chain(s))
            hits = {r.id for r in served_only if list(r.check(t))}
            if s in served:
                fired_served |= hits
            else:
                assert hits == set(), (s.location.uri, s.position, hits)
    assert fired_served == {r.id for r in served_only}  # the vectors do exercise every rule
