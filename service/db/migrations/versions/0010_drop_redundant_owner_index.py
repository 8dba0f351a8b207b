"""Drop ix_webhook_events_owner_id: ix_events_owner_received (owner_id, received_at) serves every look-up by owner

Revision ID: 0010
Revises: 0009

Every stored webhook event paid for both indexes; the second one's leading column answers the
same queries (an index on (a, b) is an index on a). Measured in bench/README.md (issue 11).
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_webhook_events_owner_id', table_name='webhook_events')


def downgrade() -> None:
    op.create_index('ix_webhook_events_owner_id', 'webhook_events', ['owner_id'])
