"""The rule registry: an explicit tuple, stable ids, no import magic.

Adding a rule: write its check (``rules_cert`` for the certificate alone, ``rules_use`` for
where it is used or the estate), add one ``Rule`` here, and give it a passing and a failing
vector in ``tests/unit/assess/test_assess_rules.py``.
"""

from __future__ import annotations

from certwarden.assess import rules_br as br
from certwarden.assess import rules_cert as rc
from certwarden.assess import rules_use as ru
from certwarden.assess.finding import Rule, Scope, Severity
from certwarden.assess.schedule import CITATION as CABF_VALIDITY

SEED = "the seed article, 'What Is a Self-Signed Certificate?'"
_C, _L, _E, _P = Scope.CERTIFICATE, Scope.LOCATION, Scope.ESTATE, Scope.POLICY
_H, _M, _Lo, _I, _X = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO, Severity.CRITICAL

RULES: tuple[Rule, ...] = (
    Rule(id="self-signed", title="Self-signed certificate in use", severity=_H, scope=_L,
         rationale="No third party vouches for it: clients must click through or pin it.",
         citation=f"RFC 5280 §3.2; {SEED}", check=ru.self_signed,
         remediation="Replace it with a certificate from the private CA "
                     "(certwarden ca issue) and renew it automatically."),
    Rule(id="self-issued-unverifiable", title="Self-issued, issuer unknown", severity=_H,
         scope=_L, check=ru.self_issued_unverifiable,
         rationale="Subject equals issuer but its own key does not verify it: "
                   "neither self-signed nor verifiable.",
         citation="RFC 5280 §3.2, §6.1",
         remediation="Find the CA that signed it, or replace it with a CA-issued certificate."),
    Rule(id="untrusted-chain", title="Chain does not reach a trusted root", severity=_H,
         scope=_L, check=ru.untrusted_chain, served_only=True,
         rationale="Clients that do not already trust this root reject the connection.",
         citation="RFC 5280 §6.1",
         remediation="Distribute the private root to clients (trust_anchors in the policy), "
                     "or issue from a trusted CA."),
    Rule(id="incomplete-chain", title="Intermediate certificates missing", severity=_M,
         scope=_L, check=ru.incomplete_chain, served_only=True,
         rationale="Clients without the intermediate cached cannot build a path to a root.",
         citation="RFC 5246 §7.4.2 / RFC 8446 §4.4.2 (the server sends the chain)",
         remediation="Configure the server to send the full chain (leaf, then intermediates)."),
    Rule(id="path-too-long", title="Chain longer than allowed", severity=_H, scope=_L,
         check=ru.path_too_long, served_only=True,
         rationale="Verifiers stop building a path at a fixed depth (and at an issuer's "
                   "pathLenConstraint): they reject a longer one.",
         citation="RFC 5280 §4.2.1.9, §6.1.4 (k)-(m); OpenSSL verify depth",
         remediation="Serve the leaf and the intermediates of one short path only (drop "
                     "cross-certificates and unrelated CAs from the bundle)."),
    Rule(id="revoked", title="Revoked by its CA", severity=_X, scope=_L, check=ru.revoked,
         rationale="Its issuer has withdrawn it (key compromise, misissuance, retirement): "
                   "clients that check revocation refuse it, the rest are exposed.",
         citation="RFC 5280 §3.3, §5, §6.3; RFC 6960 (OCSP)",
         remediation="Replace it now with a fresh key (certwarden replace); find why it "
                     "was revoked before reusing anything of it."),
    Rule(id="expired", title="Expired", severity=_X, scope=_C, check=rc.expired,
         rationale="Every client rejects it; the service is down for them or they ignore errors.",
         citation="RFC 5280 §4.1.2.5", remediation="Renew now and automate renewal."),
    Rule(id="not-yet-valid", title="Not yet valid", severity=_H, scope=_C,
         check=rc.not_yet_valid,
         rationale="Clients reject it until notBefore; often a clock or issuance error.",
         citation="RFC 5280 §4.1.2.5",
         remediation="Check the issuing host's clock; reissue with a current notBefore."),
    Rule(id="expiring-soon", title="Expiring soon", severity=_M, scope=_C,
         check=rc.expiring_soon,
         rationale="An outage is coming unless it is renewed in time.",
         citation="the seed article, 'Why the 47-Day Mandate Redefines Renewal Strategy'",
         remediation="Renew it, and put it under automated renewal (ACME)."),
    Rule(id="validity-too-long", title="Validity longer than allowed", severity=_M, scope=_C,
         check=rc.validity_too_long,
         rationale="Long-lived certificates outlast key hygiene and will be rejected.",
         citation=CABF_VALIDITY,
         remediation="Reissue within the ceiling in force and renew automatically."),
    Rule(id="never-expires", title="Never expires", severity=_H, scope=_C,
         check=rc.never_expires,
         rationale="A certificate that never expires is never reviewed; a stolen key works "
                   "forever.",
         citation=f"RFC 5280 §4.1.2.5; {SEED}",
         remediation="Replace it with a short-lived certificate."),
    Rule(id="weak-key", title="Weak key", severity=_H, scope=_C, check=rc.weak_key,
         rationale="RSA below 2048 bits, EC below 256 bits and DSA are breakable or withdrawn; "
                   "the BRs also refuse RSA moduli not a multiple of 8 and other curves.",
         citation="CA/B TLS BR §6.1.5; NIST SP 800-131A Rev. 2; FIPS 186-5",
         remediation="Reissue with ECDSA P-256 or RSA 3072."),
    Rule(id="weak-signature", title="Weak signature hash", severity=_H, scope=_C,
         check=rc.weak_signature,
         rationale="MD5 and SHA-1 signatures can be forged by chosen-prefix collision.",
         citation="CA/B TLS BR §7.1.3.2; RFC 6151; SHAttered (2017)",
         remediation="Reissue with SHA-256 or better."),
    Rule(id="missing-san", title="No subjectAltName", severity=_M, scope=_C,
         check=rc.missing_san,
         rationale="Modern clients match names only against the SAN; CN-only certificates fail.",
         citation="RFC 6125 §6.4.4; CA/B TLS BR §7.1.2.7.12",
         remediation="Reissue with every served name in subjectAltName."),
    Rule(id="cn-not-in-san", title="Common name not in SAN", severity=_Lo, scope=_C,
         check=rc.cn_not_in_san,
         rationale="A CN that is not a SAN is ignored by clients and misleads humans.",
         citation="CA/B TLS BR §7.1.4.3 (CN, if present, MUST be one of the SAN values)",
         remediation="Reissue with the CN repeated in subjectAltName (or without a CN)."),
    Rule(id="wildcard", title="Wildcard certificate", severity=_Lo, scope=_C,
         check=rc.wildcard,
         rationale="One key serves every host under the name: one compromise exposes all.",
         citation="RFC 6125 §7.2",
         remediation="Prefer one certificate per service from the private CA."),
    Rule(id="leaf-eku", title="End-entity EKU missing or anyExtendedKeyUsage", severity=_M,
         scope=_C, check=br.leaf_eku,
         rationale="A subscriber certificate must say it is for TLS servers (serverAuth) and "
                   "nothing else; without it any purpose goes, with anyEKU every purpose.",
         citation="CA/B TLS BR §7.1.2.7.10 (Subscriber Certificate Extended Key Usage)",
         remediation="Reissue with extendedKeyUsage serverAuth (and clientAuth if needed)."),
    Rule(id="root-profile", title="Root CA certificate profile", severity=_Lo, scope=_C,
         check=br.root_profile,
         rationale="A root with an EKU or an issuer/serial AKI is outside the BR profile; "
                   "clients differ in how they treat it.",
         citation="CA/B TLS BR §7.1.2.1.2 (Root CA extensions), §7.1.2.1.3 (Root CA AKI)",
         remediation="Re-create the root without extendedKeyUsage and with a keyIdentifier-"
                     "only AKI (or none)."),
    Rule(id="wildcard-public-suffix", title="Wildcard under a public suffix", severity=_H,
         scope=_C, check=br.wildcard_public_suffix,
         rationale="*.co.uk or *.github.io covers names of every registrant under the suffix.",
         citation="CA/B TLS BR §3.2.2.6 (Wildcard Domain Validation); Public Suffix List",
         remediation="Issue for the registrable domain's own names (*.example.co.uk)."),
    Rule(id="ip-name-form", title="IP address in a non-canonical form", severity=_M,
         scope=_C, check=br.ip_name_form,
         rationale="An IP written as a DNS name, with a netmask, IPv4-mapped, or a CN with "
                   "leading zeros matches nothing or something else in clients.",
         citation="CA/B TLS BR §7.1.2.7.12, §7.1.4.3; RFC 3986 §3.2.2; RFC 5952 §4",
         remediation="Put each address in an iPAddress SAN (4 or 16 octets) and any CN in "
                     "canonical text."),
    Rule(id="hostname-mismatch", title="Name not covered", severity=_H, scope=_L,
         check=ru.hostname_mismatch, served_only=True,
         rationale="The name or IP the client used is not in the certificate: clients reject it.",
         citation="RFC 6125 §6; RFC 9110 §4.3.4",
         remediation="Reissue with the served name (or IP) in subjectAltName."),
    Rule(id="ca-cert-served-as-leaf", title="CA certificate served as leaf", severity=_H,
         scope=_L, check=ru.ca_cert_served_as_leaf, served_only=True,
         rationale="A server holding a CA key can mint certificates for any name.",
         citation="RFC 5280 §4.2.1.9; CA/B TLS BR §7.1.2.7.8",
         remediation="Serve an end-entity certificate (CA:FALSE); keep CA keys off servers."),
    Rule(id="key-reuse", title="Key reused across certificates", severity=_M, scope=_E,
         check=ru.key_reuse,
         rationale="One stolen key unlocks every certificate that shares it.",
         citation="NIST SP 800-57 Part 1 §5.2 (one key, one purpose)",
         remediation="Generate a fresh key for each certificate and each renewal."),
    Rule(id="cert-sprawl", title="Same certificate at many locations", severity=_Lo, scope=_E,
         check=ru.cert_sprawl,
         rationale="A key copied to many places is as safe as the weakest of them.",
         citation=SEED, remediation="Issue a certificate per service."),
    Rule(id="private-key-exposed", title="Private key exposed", severity=_H, scope=_L,
         check=ru.private_key_exposed,
         rationale="A key readable by group or world lets other users impersonate the "
                   "service.",
         citation=f"NIST SP 800-57 Part 1 §6.2.2; {SEED} ('Secure Key Storage')",
         remediation="chmod 600 and chown it to the service's user; then consider an HSM "
                     "or an encrypted key."),
    Rule(id="private-key-unencrypted", title="Private key stored unencrypted", severity=_Lo,
         scope=_L, check=ru.private_key_unencrypted,
         rationale="Readable only by its owner, but in clear: a copy of the file (a backup, "
                   "a disk image, root) is the key.",
         citation=f"NIST SP 800-57 Part 1 §6.2.2; {SEED} ('Secure Key Storage')",
         remediation="Keep the key in an HSM or TPM (PKCS#11), or store it encrypted and "
                     "give the service its passphrase at start from an agent or a credential "
                     "store (nginx ssl_password_file, systemd-creds); keep the file 0600."),
    Rule(id="placeholder-subject", title="Placeholder subject", severity=_M, scope=_L,
         check=rc.placeholder_subject,
         rationale="Tool and appliance defaults mark certificates nobody configured.",
         citation="OpenSSL openssl.cnf defaults; vendor factory certificates",
         remediation="Reissue with the real service name and organisation."),
    Rule(id="v1-certificate", title="X.509 version 1", severity=_M, scope=_C,
         check=rc.v1_certificate,
         rationale="A v1 certificate has no extensions: no SAN, no CA constraint.",
         citation="RFC 5280 §4.1.2.1", remediation="Reissue as X.509 v3."),
    Rule(id="bad-serial", title="Malformed serial number", severity=_M, scope=_C,
         check=rc.bad_serial,
         rationale="Serials must be positive and at most 20 octets; others break clients "
                   "and revocation.",
         citation="RFC 5280 §4.1.2.2; CA/B TLS BR §7.1",
         remediation="Reissue with a positive random serial of 64 bits or more."),
    Rule(id="shadow-certificate", title="Shadow certificate (self-signed, no owner)",
         severity=_H, scope=_L, check=ru.shadow_certificate,
         rationale="Nobody is responsible for it: it will not be renewed or revoked.",
         citation=f"{SEED} ('The Risk of Shadow Identity')",
         remediation="Assign an owner in the policy, then replace it via the private CA."),
    Rule(id="exception-expired", title="Policy exception expired", severity=_M, scope=_P,
         check=ru.no_check,
         rationale="An exception past its date silences nothing and must be renewed or removed.",
         citation="certwarden policy (exceptions carry an owner and an expiry)",
         remediation="Fix the finding it covered, or renew the exception with its owner."),
)

RULES_BY_ID = {r.id: r for r in RULES}
RULE_IDS = frozenset(RULES_BY_ID)
