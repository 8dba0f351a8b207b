"""bulk_link_runs.heartbeat_at: when a running bulk run last moved on to a user

Revision ID: 0009
Revises: 0008

A CLI run killed with SIGKILL kept its finding's `active_key` for ever, so no other run for that
finding could start. With a heartbeat, a run that has not moved for FITGLUE_BULK_RUN_STALE_S is
ended by the next start for its finding.
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bulk_link_runs') as batch:
        batch.add_column(sa.Column('heartbeat_at', service.db.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bulk_link_runs') as batch:
        batch.drop_column('heartbeat_at')
