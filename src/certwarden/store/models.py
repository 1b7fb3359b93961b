"""Every table, imported here so Alembic and ``Base.metadata`` see them all.

Each area keeps its tables in its own module and its own migration branch off ``0001_base``.
"""

from certwarden.store import (
    acme_tables,  # noqa: F401 - ACME server: acme_0001
    ca_tables,  # noqa: F401 - private CA: ca_0001
    inventory_tables,  # noqa: F401 - inventory: inv_0001
    managed_tables,  # noqa: F401 - managed certificates: managed_0001
)
