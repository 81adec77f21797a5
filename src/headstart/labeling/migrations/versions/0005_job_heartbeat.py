"""A running job's heartbeat: when its worker last said it was alive, so that a job whose worker died
(SIGKILL, a power cut) can be put back in the queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: SQLite and PostgreSQL both add it in place, without copying the table
    op.add_column("model_versions", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    # A job already running gets one beat now: its worker (if alive) has the time it takes to go stale to
    # show it, and one that died before this upgrade is queued again after that (not left running for ever).
    versions = sa.table("model_versions", sa.column("status", sa.String),
                        sa.column("heartbeat_at", sa.DateTime(timezone=True)))
    op.execute(versions.update().where(versions.c.status == "running")
               .values(heartbeat_at=datetime.now(timezone.utc)))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:  # batch: SQLite before 3.35 cannot drop a column
        batch.drop_column("heartbeat_at")
