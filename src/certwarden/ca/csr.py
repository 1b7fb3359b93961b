"""Certificate signing requests: load, verify the signature, check the key, read the names."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from certwarden.ca.errors import RequestRefused
from certwarden.ca.names import Name, parse_name
from certwarden.errors import ParseError

LeafKey = (ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
           | ed448.Ed448PublicKey)
_CURVES = ("secp256r1", "secp384r1", "secp521r1")
MIN_RSA_BITS = 2048  # the CA/Browser Forum Baseline Requirements minimum


def load_csr(data: bytes | x509.CertificateSigningRequest, *, source: str = "CSR",
             ) -> x509.CertificateSigningRequest:
    """A CSR from PEM or DER whose self-signature verifies."""
    if isinstance(data, x509.CertificateSigningRequest):
        csr = data
    else:
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                csr = x509.load_pem_x509_csr(data)
            else:
                csr = x509.load_der_x509_csr(data)
        except ValueError as exc:
            raise ParseError(source, f"not a certificate signing request ({exc})") from None
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # an unsupported key type surfaces here
        raise RequestRefused(f"CSR signature cannot be checked: {exc}", rule="csr-signature"
                             ) from None
    if not valid:
        raise RequestRefused("CSR signature does not verify", rule="csr-signature")
    return csr


def check_key(key: object) -> LeafKey:
    """The key if it is strong enough for a leaf, else ``RequestRefused``."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise RequestRefused(f"RSA key of {key.key_size} bits is below {MIN_RSA_BITS}",
                                 rule="key-strength")
        if key.public_numbers().e < 65537:
            raise RequestRefused("RSA public exponent below 65537", rule="key-strength")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise RequestRefused(f"EC curve {key.curve.name} is not one of "
                                 f"P-256, P-384, P-521", rule="key-strength")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key
    raise RequestRefused(f"key type {type(key).__name__} is not accepted", rule="key-strength")


def requested_names(csr: x509.CertificateSigningRequest) -> tuple[Name, ...]:
    """SANs of the CSR; the CN only when there is no SAN extension (legacy requests)."""
    out: list[Name] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        out.extend(parse_name(v) for v in san.get_values_for_type(x509.DNSName))
        out.extend(parse_name(str(v)) for v in san.get_values_for_type(x509.IPAddress))
        out.extend(parse_name(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier))
    else:
        for attr in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            out.append(parse_name(str(attr.value)))
    return tuple(dict.fromkeys(out))
