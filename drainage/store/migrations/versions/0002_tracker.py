"""tracker: click ids, hourly rollups, daily visitors, orders, settings

Revision ID: 0002
Revises: 0001

No release wrote clicks before this revision (there was no tracker), so the new non-null click_id
column needs no backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('click_rollups',
    sa.Column('hour', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('agent_class', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'code', 'agent_class')
    )
    op.create_table('orders',
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('click_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('item', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('variant', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('attributed_by', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('ordered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_campaign'), ['campaign'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_click_id'), ['click_id'], unique=False)

    op.create_table('settings',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('visitor_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('visitor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('day', 'code', 'visitor')
    )
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('click_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False))
        batch_op.create_unique_constraint('uq_clicks_click_id', ['click_id'])



def downgrade() -> None:
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_constraint('uq_clicks_click_id', type_='unique')
        batch_op.drop_column('click_id')

    op.drop_table('visitor_days')
    op.drop_table('settings')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_click_id'))
        batch_op.drop_index(batch_op.f('ix_orders_campaign'))

    op.drop_table('orders')
    op.drop_table('click_rollups')
