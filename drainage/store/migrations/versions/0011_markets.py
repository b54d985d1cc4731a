"""markets: the market a link and a delivery were posted for ('' for campaigns without markets)

Revision ID: 0011
Revises: 0009 (the lead re-chains it after 0010 at merge)
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('links', 'deliveries'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('market', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False,
                                       server_default=''))


def downgrade() -> None:
    for table in ('deliveries', 'links'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('market')
