"""connection history, and the indexes behind `fitglue history` and `fitglue affected`

Revision ID: 0008
Revises: 0007

- connection_history: status changes, granted-scope changes, refresh failures and one row per user
  and day of successful refreshes (what no other table keeps), by (user_id, at)
- strava_connections.refresh_failing_since: when the current run of failed refreshes began
- strava_connections (status, status_changed_at), (status, refresh_failing_since), (status,
  last_event_at): who is in a status since when, counted and listed by index range
- oauth_attempts (user_id, started_at, id, outcome): each user's newest attempt and its outcome, covered
- bulk_link_runs: "send Connect links to everyone with FINDING" runs; one active per finding
- connect_links (user_id, created_at), outbound_events (user_id, created_at), audit_log (lower(target), at), jobs (user_id, created_at)
  without event jobs: one user's links, agent actions and jobs newest first
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

NOT_EVENT_JOB = sa.text("kind != 'webhook_event'")


def upgrade() -> None:
    op.create_table(
        'connection_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('at', service.db.types.UTCDateTime(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('detail', sa.String(length=200), nullable=True),
        sa.Column('day', sa.String(length=10), nullable=True),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_history_user_at', 'connection_history', ['user_id', 'at'], unique=False)
    op.create_table(
        'bulk_link_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('finding', sa.String(length=40), nullable=False),
        sa.Column('since', service.db.types.UTCDateTime(), nullable=True),
        sa.Column('force', sa.Boolean(), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('agent_slack_id', sa.String(length=40), nullable=True),
        sa.Column('response_url', sa.Text(), nullable=True),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('active_key', sa.String(length=40), nullable=True),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('to_file', sa.Integer(), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', service.db.types.UTCDateTime(), nullable=False),
        sa.Column('finished_at', service.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active_key'),
    )
    op.create_index('ix_bulk_link_runs_finished_at', 'bulk_link_runs', ['finished_at'])
    op.create_index('ux_history_user_kind_day', 'connection_history', ['user_id', 'kind', 'day'], unique=True)
    with op.batch_alter_table('strava_connections') as batch:
        batch.add_column(sa.Column('refresh_failing_since', service.db.types.UTCDateTime(), nullable=True))
    # A run of failures already under way began at the latest by its last failure.
    op.execute("UPDATE strava_connections SET refresh_failing_since = last_refresh_error_at "
               "WHERE refresh_failures > 0 AND last_refresh_error_at IS NOT NULL")
    op.create_index('ix_connections_status_changed', 'strava_connections', ['status', 'status_changed_at'])
    op.create_index('ix_connections_refresh_failing', 'strava_connections', ['status', 'refresh_failing_since'])
    op.create_index('ix_connections_last_event', 'strava_connections', ['status', 'last_event_at'])
    op.create_index('ix_attempts_user_latest', 'oauth_attempts', ['user_id', 'started_at', 'id', 'outcome'])
    op.create_index('ix_links_user_created', 'connect_links', ['user_id', 'created_at'])
    op.create_index('ix_outbound_user_created', 'outbound_events', ['user_id', 'created_at'])
    op.create_index('ix_audit_target_lower_at', 'audit_log', [sa.text('lower(target)'), 'at'])
    op.create_index('ix_jobs_user_history', 'jobs', ['user_id', 'created_at'],
                    sqlite_where=NOT_EVENT_JOB, postgresql_where=NOT_EVENT_JOB)


def downgrade() -> None:
    op.drop_index('ix_jobs_user_history', table_name='jobs')
    op.drop_index('ix_audit_target_lower_at', table_name='audit_log')
    op.drop_index('ix_outbound_user_created', table_name='outbound_events')
    op.drop_index('ix_links_user_created', table_name='connect_links')
    op.drop_index('ix_attempts_user_latest', table_name='oauth_attempts')
    op.drop_index('ix_connections_last_event', table_name='strava_connections')
    op.drop_index('ix_connections_refresh_failing', table_name='strava_connections')
    op.drop_index('ix_connections_status_changed', table_name='strava_connections')
    with op.batch_alter_table('strava_connections') as batch:
        batch.drop_column('refresh_failing_since')
    op.drop_index('ix_bulk_link_runs_finished_at', table_name='bulk_link_runs')
    op.drop_table('bulk_link_runs')
    op.drop_index('ux_history_user_kind_day', table_name='connection_history')
    op.drop_index('ix_history_user_at', table_name='connection_history')
    op.drop_table('connection_history')
