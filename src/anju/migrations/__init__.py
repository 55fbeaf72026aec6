"""Alembic migrations; run through :mod:`anju.core.migrate`, never ``create_all``."""
