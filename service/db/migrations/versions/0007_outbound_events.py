"""outbound events: the transactional outbox for FitGlue's other services (issue 12)

Revision ID: 0007
Revises: 0006

- outbound_events: one row per event (type, athlete, the JSON body as sent, the Standard Webhooks
  id), its delivery state, attempts, next attempt and lease
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbound_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('webhook_id', sa.String(length=64), nullable=False),
        sa.Column('type', sa.String(length=60), nullable=False),
        sa.Column('athlete_id', sa.BigInteger(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', service.db.types.UTCDateTime(), nullable=True),
        sa.Column('claimed_by', sa.String(length=80), nullable=True),
        sa.Column('claimed_until', service.db.types.UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('replay_of', sa.String(length=64), nullable=True),
        sa.Column('created_at', service.db.types.UTCDateTime(), nullable=False),
        sa.Column('updated_at', service.db.types.UTCDateTime(), nullable=True),
        sa.Column('delivered_at', service.db.types.UTCDateTime(), nullable=True),
        sa.Column('failed_at', service.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('webhook_id'),
    )
    op.create_index('ix_outbound_due', 'outbound_events', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_outbound_athlete', 'outbound_events', ['athlete_id', 'state', 'id'], unique=False)
    op.create_index('ix_outbound_user', 'outbound_events', ['user_id'], unique=False)
    op.create_index('ix_outbound_created', 'outbound_events', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbound_created', table_name='outbound_events')
    op.drop_index('ix_outbound_user', table_name='outbound_events')
    op.drop_index('ix_outbound_athlete', table_name='outbound_events')
    op.drop_index('ix_outbound_due', table_name='outbound_events')
    op.drop_table('outbound_events')
