"""search_submissions: the store URLs a search channel (IndexNow) submitted, and what they were then

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'search_submissions',
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('url_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('channel', 'url_digest'),
    )


def downgrade() -> None:
    op.drop_table('search_submissions')
