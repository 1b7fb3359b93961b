"""The one settings object of a certwarden process, built once at the edge and passed down.

The CLI builds it from its options and the environment (``Settings.from_env``); ``certwarden
serve --workers N`` hands it to its worker processes as environment (``to_env``), where the
worker entry point (``cli.serve.worker_app``) rebuilds it. Library code never sees it: it
takes the values it needs as arguments and never reads ``os.environ``. Only the CLI reads
the real environment; this module is given a mapping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from certwarden.errors import UsageError

if TYPE_CHECKING:  # ACME's settings types, imported where used: every verb builds Settings
    from certwarden.acme.context import AcmeSettings

DATABASE_URL = "CERTWARDEN_DATABASE_URL"
CA_DIR = "CERTWARDEN_CA_DIR"
CA_PASSPHRASE = "CERTWARDEN_CA_PASSPHRASE"  # noqa: S105 - the name of a variable
PKCS11_PIN = "CERTWARDEN_PKCS11_PIN"
PKCS11_MODULE = "CERTWARDEN_PKCS11_MODULE"
# What ``serve`` hands its worker processes (the names are the interface between the two).
SERVE_NO_WARM = "CERTWARDEN_SERVE_NO_WARM"
ACME = "CERTWARDEN_ACME"
ACME_CA = "CERTWARDEN_ACME_CA"
ACME_RESOLVER = "CERTWARDEN_ACME_RESOLVER"
ACME_HTTP_PORT = "CERTWARDEN_ACME_HTTP_PORT"
ACME_TLS_PORT = "CERTWARDEN_ACME_TLS_PORT"
ACME_ALLOW = "CERTWARDEN_ACME_ALLOW"
ACME_NONCES = "CERTWARDEN_ACME_NONCES"
ACME_EAB = "CERTWARDEN_ACME_EAB"


def data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/certwarden`` (``~/.local/share/certwarden`` when unset)."""
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "certwarden"


def database_url(option: str | None, env: Mapping[str, str]) -> str:
    """``--db``, else ``CERTWARDEN_DATABASE_URL``, else SQLite in the data directory."""
    return option or env.get(DATABASE_URL) or f"sqlite:///{data_dir(env) / 'inventory.db'}"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name) or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"{name}: not a port number: {text!r}")
    return int(text)


def acme_settings_from_env(env: Mapping[str, str]) -> AcmeSettings:
    """The ACME options ``serve`` put in the environment for its worker processes."""
    from certwarden.acme.context import AcmeSettings
    from certwarden.acme.validation import PRIVATE_NETWORKS, ValidatorSettings

    allow = tuple(a for a in env.get(ACME_ALLOW, "").split(",") if a)
    validator = ValidatorSettings(
        resolver=env.get(ACME_RESOLVER) or None,
        http_port=_port(env, ACME_HTTP_PORT, 80),
        tls_port=_port(env, ACME_TLS_PORT, 443),
        allow=allow or PRIVATE_NETWORKS)
    return AcmeSettings(validator=validator, nonces=env.get(ACME_NONCES, "memory"),
                        eab_required=env.get(ACME_EAB) == "required")


def _acme_env(acme: AcmeSettings) -> dict[str, str]:
    from certwarden.acme.validation import PRIVATE_NETWORKS

    v = acme.validator
    return {ACME: "on", ACME_RESOLVER: v.resolver or "", ACME_HTTP_PORT: str(v.http_port),
            ACME_TLS_PORT: str(v.tls_port),
            ACME_ALLOW: "" if v.allow == PRIVATE_NETWORKS else ",".join(v.allow),
            ACME_NONCES: acme.nonces, ACME_EAB: "required" if acme.eab_required else ""}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    database_url: str
    ca_dir: Path  # where ``ca init`` writes encrypted key files
    ca_name: str | None = None  # the CA that ``serve`` issues from (``--ca``); None: newest
    # Asked for when a key is opened (a file, the environment or a prompt), never stored.
    passphrase: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)
    pkcs11_pin: str | None = field(default=None, repr=False)
    pkcs11_module: str | None = None  # for pkcs11: URIs without module-path; None: SoftHSM2
    warm_ocsp: bool = True
    acme: AcmeSettings | None = None  # None: no /acme

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, database: str | None = None) -> Settings:
        """What the environment says; ``database`` (``--db``) wins over it."""
        secret = env.get(CA_PASSPHRASE)
        return cls(database_url=database_url(database, env),
                   ca_dir=Path(env.get(CA_DIR) or data_dir(env) / "ca"),
                   ca_name=env.get(ACME_CA) or None,
                   passphrase=(lambda: secret.encode()) if secret else None,
                   pkcs11_pin=env.get(PKCS11_PIN) or None,
                   pkcs11_module=env.get(PKCS11_MODULE) or None,
                   warm_ocsp=not env.get(SERVE_NO_WARM),
                   acme=acme_settings_from_env(env) if env.get(ACME) == "on" else None)

    def to_env(self) -> dict[str, str]:
        """What a ``serve`` worker process needs of these settings, as the environment
        ``from_env`` reads (not ``ca_dir`` or ``pkcs11_module``: workers create no keys).

        The passphrase is asked for now; ``ValueError`` if the environment cannot hold it
        (not UTF-8, or a NUL byte)."""
        out = {DATABASE_URL: self.database_url, ACME_CA: self.ca_name or "",
               **(_acme_env(self.acme) if self.acme is not None else {ACME: "off"})}
        if not self.warm_ocsp:
            out[SERVE_NO_WARM] = "1"
        if self.pkcs11_pin:
            out[PKCS11_PIN] = self.pkcs11_pin
        if self.passphrase is not None:
            text = self.passphrase().decode()  # UnicodeDecodeError is a ValueError
            if "\0" in text:
                raise ValueError("a NUL byte cannot travel in the environment")
            out[CA_PASSPHRASE] = text
        return out
