"""rate-limit ledger: our own call counts per window

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rate_limit_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counted_15min', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('counted_daily', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('counted_quarter', service.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('counted_day', service.db.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rate_limit_state', schema=None) as batch_op:
        batch_op.drop_column('counted_day')
        batch_op.drop_column('counted_quarter')
        batch_op.drop_column('counted_daily')
        batch_op.drop_column('counted_15min')
