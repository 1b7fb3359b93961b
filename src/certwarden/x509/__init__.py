"""Parsing every certificate format into the ``Certificate`` record; classification."""

from certwarden.x509.extensions import BasicConstraints, Extension, SubjectAltNames
from certwarden.x509.parse import Format, KeyInfo, Parsed, iter_sources, parse_bytes, read_source
from certwarden.x509.record import Certificate, KeyType, Kind, PublicKeyInfo

__all__ = [
    "BasicConstraints",
    "Certificate",
    "Extension",
    "Format",
    "KeyInfo",
    "KeyType",
    "Kind",
    "Parsed",
    "PublicKeyInfo",
    "SubjectAltNames",
    "iter_sources",
    "parse_bytes",
    "read_source",
]
