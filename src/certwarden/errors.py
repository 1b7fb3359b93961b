"""The one error tree. Every error certwarden raises on purpose is a ``CertwardenError``.

Subclasses carry the structured fields a caller needs (``source``, ``target`` ...); the CLI
and the web layer each turn them into output in exactly one place.
"""

from __future__ import annotations


class CertwardenError(Exception):
    """Root of every deliberate certwarden error. ``str(err)`` is one line for a human."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # One line, always: a multi-line reason from a library would break CLI output.
        return " ".join(self.message.split())


class UsageError(CertwardenError):
    """The caller asked for something that cannot be done as asked (bad option, bad value)."""


class ParseError(CertwardenError):
    """Input that is not (or not entirely) a certificate, key or keystore we can read."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class PasswordError(ParseError):
    """A protected container (PKCS#12, JKS, encrypted key) needs a different password."""


class VerificationError(CertwardenError):
    """A check that failed; raised rather than returned as ``False``."""


class ConnectError(CertwardenError):
    """A network endpoint could not be reached or did not complete a TLS handshake."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


def one_line(exc: BaseException, limit: int = 200) -> str:
    """What a library exception says, as one short line (its type when it says nothing)."""
    text = " ".join(str(exc).split())
    return text[:limit] if text else type(exc).__name__
