"""certwarden: find, assess and replace self-signed and unmanaged TLS certificates."""

__version__ = "0.1.0"
