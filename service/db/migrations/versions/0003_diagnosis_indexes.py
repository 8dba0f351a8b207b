"""indexes for diagnosis, erasure and the audit listing

Revision ID: 0003
Revises: 0002

- webhook_events(owner_id, received_at): one athlete's newest event, a single index seek
- webhook_events(received_at): the newest event app-wide
- audit_log(lower(target)): audit filtered by target, and relabelling on erasure
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_events_owner_received', 'webhook_events', ['owner_id', 'received_at'], unique=False)
    op.create_index('ix_events_received', 'webhook_events', ['received_at'], unique=False)
    op.create_index('ix_audit_target_lower', 'audit_log', [sa.text('lower(target)')], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_target_lower', table_name='audit_log')
    op.drop_index('ix_events_received', table_name='webhook_events')
    op.drop_index('ix_events_owner_received', table_name='webhook_events')
