"""Alembic migrations of the labeling store, run programmatically by :func:`headstart.labeling.store.migrate`."""
