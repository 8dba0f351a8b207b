"""index for the App Home's missing-permissions list

Revision ID: 0005
Revises: 0004

- strava_connections(status, granted_scopes, connected_at): connections counted per status and
  per grant in one index scan, and the newest connected users with a given grant found without
  reading the table
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_connections_grant', 'strava_connections', ['status', 'granted_scopes', 'connected_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_connections_grant', table_name='strava_connections')
