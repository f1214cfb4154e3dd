"""Alembic environment of the store. Runs inside ``nas.store.upgrade``, which hands over an open
connection; the version table is ours (Optuna's RDBStorage keeps its own `alembic_version`)."""

from __future__ import annotations

from alembic import context

from nas.store._models import BaseModel

VERSION_TABLE = "nas_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=BaseModel.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them
    include_name=lambda name, type_, _parent: type_ != "table" or name.startswith("nas_"),
)
with context.begin_transaction():
    context.run_migrations()
