"""Every table, imported here so Alembic and ``Base.metadata`` see them all.

Each branch keeps its tables in its own module (``inventory.py``, ``ca_tables.py`` ...) and
adds one import line below.
"""
from certwarden.store import (
    acme_tables,  # noqa: F401 - ACME server (issue 7)
    ca_tables,  # noqa: F401 - private CA
)
