"""markets: the market a link and a delivery were posted for ('' for campaigns without markets)

Revision ID: 0011
Revises: 0010

Also fills `unique_days` for the scopes that name a market (drainage.store.uniques).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('links', 'deliveries'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('market', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False,
                                       server_default=''))
    from drainage.store.uniques import SCOPES, rebuild

    rebuild(op.get_bind(), [s for s in SCOPES if "market" in s])


def downgrade() -> None:
    op.execute("DELETE FROM unique_days WHERE scope LIKE '%market%'")
    for table in ('deliveries', 'links'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('market')
