"""Storage: models, engine/session setup, migrations."""
