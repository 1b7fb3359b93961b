"""Errors of the private CA; all are ``CertwardenError``s the CLI and web map in one place."""

from __future__ import annotations

from certwarden.errors import CertwardenError, UsageError


class CaError(CertwardenError):
    """Something the CA refuses or cannot do; ``str()`` is the one-line reason."""


class RequestRefused(CaError):  # noqa: N818 - the refusal is the domain word
    """A CSR or name request that profile or policy refuses; ``reason`` says which rule."""

    def __init__(self, reason: str, *, rule: str) -> None:
        super().__init__(f"request refused: {reason}")
        self.reason = reason
        self.rule = rule


class NotFound(CaError):  # noqa: N818
    """No such issuer, serial or profile."""


class DuplicateSerial(CaError):  # noqa: N818 - named for what the database refused
    """The database refused a serial it already holds (the unique constraint at work)."""


class SignerError(CaError):
    """A key could not be loaded or a signature could not be made (file or token)."""


__all__ = ["CaError", "DuplicateSerial", "NotFound", "RequestRefused", "SignerError",
           "UsageError"]
