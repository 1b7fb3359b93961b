"""Alembic environment: always driven programmatically with a live connection."""

from alembic import context

from certwarden.store import models  # noqa: F401 - registers every table on Base.metadata
from certwarden.store.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
