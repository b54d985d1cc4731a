"""unique_days: exact unique visitors per day and grouping key, filled from the recorded visitors

Revision ID: 0010
Revises: 0009

Fills `unique_days` for every scope from `visitor_days` joined to the links (exactly what the tracker's writer
keeps from here on); days whose visitor hashes were already pruned get the sum of `link_days`' per-link counts
(the best that is left of them). Adds the index the writer reads a visitor's links of the day by.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from drainage.store.uniques import SCOPES, rebuild  # the scopes the writer keeps

    op.create_table(
        'unique_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('visitors', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'scope', 'key'),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table('visitor_days', schema=None) as batch_op:
        batch_op.create_index('ix_visitor_days_visitor', ['visitor'], unique=False)
    rebuild(op.get_bind(), [s for s in SCOPES if "market" not in s])  # links have no market yet: 0011 adds it


def downgrade() -> None:
    with op.batch_alter_table('visitor_days', schema=None) as batch_op:
        batch_op.drop_index('ix_visitor_days_visitor')
    op.drop_table('unique_days')
