"""clicks: drop the index on code (reports read rollups; it cost the tracker a random B-tree insert per click)

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_clicks_code')


def downgrade() -> None:
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.create_index('ix_clicks_code', ['code'], unique=False)
