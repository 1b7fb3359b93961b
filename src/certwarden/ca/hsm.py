"""PKCS#11 signer (python-pkcs11): the key is generated in the token and never leaves it.

URI (RFC 7512): ``pkcs11:token=LABEL;object=LABEL?module-path=/path/lib.so&pin-value=1234``.
``pin-value`` / ``pin-source=file:/path`` or the caller's ``pin`` (the CLI's ``--pin`` /
``CERTWARDEN_PKCS11_PIN``) give the PIN; the PIN is never stored (``key_ref`` drops it). The
module is ``module-path``, else the caller's ``module`` (``CERTWARDEN_PKCS11_MODULE``, read at
the edge), else Debian's SoftHSM2.

SoftHSM has no combined ECDSA-SHA256 mechanism: the host hashes, the token signs the digest
with CKM_ECDSA and returns raw r||s, which is re-encoded as the DER ``Ecdsa-Sig-Value``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from certwarden.ca.errors import SignerError
from certwarden.ca.signer import PublicKey
from certwarden.errors import UsageError
from certwarden.x509.keys import KeyAlgorithm, PrivateKey

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_CURVES = {KeyAlgorithm.EC_P256: "secp256r1", KeyAlgorithm.EC_P384: "secp384r1"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pkcs11Uri:
    token: str
    object: str
    module: str
    pin: str | None

    @classmethod
    def parse(cls, uri: str, *, pin: str | None = None, module: str | None = None) -> Pkcs11Uri:
        if not uri.startswith("pkcs11:"):
            raise UsageError(f"not a pkcs11: URI: {uri.partition('?')[0]!r}")  # no pin-value
        path, _, query = uri[len("pkcs11:"):].partition("?")
        attrs = dict(_pairs(path, ";"))
        q = dict(_pairs(query, "&"))
        if "token" not in attrs or "object" not in attrs:
            raise UsageError("pkcs11: URI needs token=... and object=... "
                             "(e.g. pkcs11:token=ca;object=issuing)")
        found_pin = pin or q.get("pin-value")
        if not found_pin and "pin-source" in q:
            src = q["pin-source"].removeprefix("file:")
            try:
                found_pin = Path(src).read_text().strip()
            except OSError as exc:
                raise UsageError(f"pin-source {src}: {exc.strerror}") from None
        return cls(token=attrs["token"], object=attrs["object"],
                   module=q.get("module-path") or module or DEFAULT_MODULE, pin=found_pin)

    @property
    def key_ref(self) -> str:
        """The URI without the PIN: what the ledger stores."""
        q = urllib.parse.quote(self.module, safe="/")
        return (f"pkcs11:token={urllib.parse.quote(self.token)};"
                f"object={urllib.parse.quote(self.object)}?module-path={q}")


def _pairs(text: str, sep: str) -> list[tuple[str, str]]:
    out = []
    for part in filter(None, text.split(sep)):
        k, _, v = part.partition("=")
        out.append((k.strip(), urllib.parse.unquote(v)))
    return out


_libs: dict[str, Any] = {}
_lib_lock = threading.Lock()
_logged_in: dict[tuple[str, str | None], str] = {}  # (module, token) -> the PIN that logged in


def _open_session(uri: Pkcs11Uri) -> Any:
    import pkcs11

    if not uri.pin:
        raise SignerError("PKCS#11 PIN missing: give pin-value/pin-source in the URI or set "
                          "CERTWARDEN_PKCS11_PIN")
    try:
        with _lib_lock:
            if uri.module not in _libs:
                _libs[uri.module] = pkcs11.lib(uri.module)
            lib = _libs[uri.module]
        token = lib.get_token(token_label=uri.token)
        try:
            session = token.open(rw=True, user_pin=uri.pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # PKCS#11 login is per token per process: another signer here (the OCSP publisher
            # beside the ACME issuer) logged in already, and a new session shares it. Only
            # the PIN that logged in may reuse that login.
            if _logged_in.get((uri.module, uri.token)) != uri.pin:
                raise pkcs11.exceptions.PinIncorrect() from None
            return token.open(rw=True)
        _logged_in[(uri.module, uri.token)] = uri.pin
        return session
    except pkcs11.exceptions.PinIncorrect:
        raise SignerError(f"PKCS#11 token {uri.token!r}: wrong PIN") from None
    except pkcs11.exceptions.NoSuchToken:
        raise SignerError(f"PKCS#11 token {uri.token!r} not found in {uri.module}") from None
    except (OSError, RuntimeError, pkcs11.exceptions.PKCS11Error) as exc:
        raise SignerError(f"PKCS#11 {uri.module}: {type(exc).__name__} {exc}") from None


class Pkcs11Signer:
    """A CA key held in a PKCS#11 token. One session per signer, serialised by a lock."""

    def __init__(self, uri: Pkcs11Uri) -> None:
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass

        self._uri = uri
        self._lock = threading.Lock()
        self._session = _open_session(uri)
        try:
            self._priv = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                               label=uri.object)
            pub = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=uri.object)
        except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned) as exc:
            raise SignerError(f"PKCS#11 object {uri.object!r} in token {uri.token!r}: "
                              f"{type(exc).__name__}") from None
        self._public = _public_key(pub)
        self._type = self._priv.key_type
        self._is_ec = self._type == KeyType.EC
        self._is_rsa = self._type == KeyType.RSA
        if self._priv[Attribute.EXTRACTABLE]:
            raise SignerError(f"PKCS#11 object {uri.object!r} is extractable; a CA key must not be")

    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def key_ref(self) -> str:
        return self._uri.key_ref

    @property
    def private_key(self) -> PrivateKey | None:
        return None

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism

        try:
            with self._lock:
                if self._is_ec:
                    assert isinstance(self._public, ec.EllipticCurvePublicKey)
                    big = self._public.curve.key_size >= 384
                    digest = (hashlib.sha384 if big else hashlib.sha256)(data).digest()
                    raw = self._priv.sign(digest, mechanism=Mechanism.ECDSA)
                    half = len(raw) // 2
                    return encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                                int.from_bytes(raw[half:], "big"))
                if self._is_rsa:
                    return bytes(self._priv.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
                return bytes(self._priv.sign(data, mechanism=Mechanism.EDDSA))
        except Exception as exc:  # the token's error types vary by module
            raise SignerError(f"PKCS#11 signing failed: {type(exc).__name__} {exc}") from None

    def close(self) -> None:
        self._session.close()


def _public_key(pub: Any) -> PublicKey:
    from pkcs11 import KeyType
    from pkcs11.util.ec import encode_ec_public_key
    from pkcs11.util.rsa import encode_rsa_public_key

    if pub.key_type == KeyType.EC:
        key = serialization.load_der_public_key(encode_ec_public_key(pub))
    elif pub.key_type == KeyType.RSA:
        key = serialization.load_der_public_key(encode_rsa_public_key(pub))
    else:
        raise SignerError(f"unsupported PKCS#11 key type {pub.key_type}")
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey
                      | ed25519.Ed25519PublicKey):
        raise SignerError("unsupported PKCS#11 public key")
    return key


def generate_in_token(uri: Pkcs11Uri, alg: KeyAlgorithm) -> Pkcs11Signer:
    """Generate a non-extractable, sensitive key pair in the token; refuse to overwrite."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    session = _open_session(uri)
    try:
        existing = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                             Attribute.LABEL: uri.object}))
        if existing:
            raise UsageError(f"PKCS#11 token {uri.token!r} already holds {uri.object!r}; "
                             "refusing to overwrite")
        key_id = os.urandom(16)
        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                   Attribute.SIGN: True, Attribute.PRIVATE: True, Attribute.TOKEN: True}
        public = {Attribute.VERIFY: True, Attribute.TOKEN: True}
        if alg in _CURVES:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[alg])},
                local=True)
            params.generate_keypair(store=True, label=uri.object, id=key_id,
                                    public_template=public, private_template=private)
        elif alg in (KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096):
            bits = 3072 if alg is KeyAlgorithm.RSA_3072 else 4096
            session.generate_keypair(KeyType.RSA, bits, store=True, label=uri.object, id=key_id,
                                     public_template=public, private_template=private)
        else:
            raise UsageError(f"{alg} keys are not generated in PKCS#11 tokens here; "
                             "use ec-p256, ec-p384, rsa-3072 or rsa-4096")
    except pkcs11.exceptions.PKCS11Error as exc:
        raise SignerError(f"PKCS#11 key generation failed: {type(exc).__name__}") from None
    finally:
        session.close()
    return Pkcs11Signer(uri)
