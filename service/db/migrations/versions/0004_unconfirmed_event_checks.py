"""what unsigned webhook events may spend: the 404 memo and the per-athlete call counts

Revision ID: 0004
Revises: 0003

- activity_not_found(activity_id, athlete_id, answered_at): Strava answered 404 for this activity
  to this athlete's token; not asked again until FITGLUE_NOT_FOUND_MEMO_S has passed
- unconfirmed_event_calls(athlete_id, window_start, calls): Strava calls spent checking events that
  claim this athlete, per 15-minute window (FITGLUE_UNCONFIRMED_CALLS_PER_ATHLETE)
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'activity_not_found',
        sa.Column('activity_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('athlete_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('answered_at', service.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('activity_id', 'athlete_id'),
    )
    op.create_index(op.f('ix_activity_not_found_answered_at'), 'activity_not_found', ['answered_at'], unique=False)
    op.create_table(
        'unconfirmed_event_calls',
        sa.Column('athlete_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('window_start', service.db.types.UTCDateTime(), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('athlete_id', 'window_start'),
    )


def downgrade() -> None:
    op.drop_table('unconfirmed_event_calls')
    op.drop_index(op.f('ix_activity_not_found_answered_at'), table_name='activity_not_found')
    op.drop_table('activity_not_found')
