"""Opening the signer behind a ``key_ref``: ``file:/path`` (an encrypted PKCS#8 file) or a
``pkcs11:`` URI (a token). The one place a stored key reference becomes a ``Signer``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from certwarden.ca.errors import SignerError
from certwarden.ca.keys import load_key_file
from certwarden.ca.signer import FileSigner, Signer


def open_signer(key_ref: str, *, passphrase: Callable[[], bytes] | None = None,
                pin: str | None = None) -> Signer:
    if key_ref.startswith("file:"):
        if not Path(key_ref[len("file:"):]).exists():  # offline: do not ask for a passphrase
            raise SignerError(f"{key_ref[len('file:'):]}: CA key file is missing "
                              "(an offline root key?)")
        if passphrase is None:
            raise SignerError("the CA key file needs a passphrase "
                              "(CERTWARDEN_CA_PASSPHRASE, --passphrase-file or a prompt)")
        path = Path(key_ref[len("file:"):])
        return FileSigner(load_key_file(path, passphrase()), ref=key_ref)
    if key_ref.startswith("pkcs11:"):
        from certwarden.ca.hsm import Pkcs11Signer, Pkcs11Uri  # python-pkcs11 only when needed

        return Pkcs11Signer(Pkcs11Uri.parse(key_ref, pin=pin))
    raise SignerError(f"unknown key reference {key_ref!r}")
