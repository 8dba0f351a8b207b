"""erasure labels: the installation's salt, and legacy user:sha256 labels made unguessable

Revision ID: 0006
Revises: 0005

Audit entries of users forgotten before this revision are labelled `user:sha256:<12 hex>`: an
unsalted hash of the e-mail, which anyone can confirm by hashing a guessed address. Each becomes
`user:hmac:<16 hex>`, an HMAC of the old label under the installation's random salt (made here if
there is none yet, under the key `service.connections.erasure.LABEL_SALT_KEY` uses), so one person's entries
stay grouped and no guess can be confirmed. The old labels cannot be brought back on downgrade.
"""
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

SALT_KEY = 'erasure.label_salt'  # = service.connections.erasure.LABEL_SALT_KEY (a migration keeps its own copy)
LEGACY_PREFIX = 'user:sha256:'
LABEL_PREFIX = 'user:hmac:'


def upgrade() -> None:
    bind = op.get_bind()
    app_state = sa.table('app_state', sa.column('key', sa.String), sa.column('value', sa.Text),
                         sa.column('updated_at', service.db.types.UTCDateTime()))
    audit = sa.table('audit_log', sa.column('target', sa.String))
    salt = bind.execute(sa.select(app_state.c.value).where(app_state.c.key == SALT_KEY)).scalar()
    if salt is None:
        salt = secrets.token_hex(32)
        bind.execute(app_state.insert().values(key=SALT_KEY, value=salt, updated_at=datetime.now(UTC)))
    legacy = bind.execute(sa.select(audit.c.target).where(audit.c.target.like(LEGACY_PREFIX + '%')).distinct())
    for (old,) in legacy.all():
        new = LABEL_PREFIX + hmac.new(bytes.fromhex(salt), old.encode(), hashlib.sha256).hexdigest()[:16]
        bind.execute(audit.update().where(audit.c.target == old).values(target=new))


def downgrade() -> None:
    pass  # an unguessable label cannot be turned back into a guessable one, nor should it be
