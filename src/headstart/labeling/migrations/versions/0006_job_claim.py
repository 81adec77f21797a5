"""A running job's claim: a random token a worker gets with the job, so that of two runs of one job
(a worker thought dead and queued again, a worker stopped while its thread finishes) only the one that
holds the claim records its result (see headstart.labeling.jobs).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: SQLite and PostgreSQL both add it in place. A job running during the upgrade has no
    # claim, so its worker (older code, which does not check one) finishes it as before.
    op.add_column("model_versions", sa.Column("claim", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:  # batch: SQLite before 3.35 cannot drop a column
        batch.drop_column("claim")
