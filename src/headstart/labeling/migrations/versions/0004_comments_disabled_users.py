"""A free-text comment on any label, and users an admin can disable without deleting their labels.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable columns: SQLite and PostgreSQL both add them in place, without copying the table
    op.add_column("labels", sa.Column("comment", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:  # batch: SQLite before 3.35 cannot drop a column
        batch.drop_column("disabled_at")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("comment")
