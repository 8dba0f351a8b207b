"""Storage: models, engine and session setup, migrations (Alembic), small app-wide state.

Imports nothing of ours: everything else stands on it.
"""
