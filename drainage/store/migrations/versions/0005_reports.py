"""reports: daily link rollups (clicks by class, unique visitors), reach of posts, report indexes

Revision ID: 0005
Revises: 0002

`link_days` is filled from the existing hourly rollups and daily visitors, so reports over clicks recorded
before this revision are the same as over clicks recorded after it.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('human', sa.Integer(), nullable=False),
    sa.Column('preview', sa.Integer(), nullable=False),
    sa.Column('bot', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'code'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('link_days', schema=None) as batch_op:
        batch_op.create_index('ix_link_days_code_day', ['code', 'day'], unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipients', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('impressions', sa.Integer(), nullable=True))
        batch_op.create_index('ix_deliveries_slot_at', ['slot_at'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_ordered_at', ['ordered_at'], unique=False)
    _backfill_link_days()


def _backfill_link_days() -> None:
    day = "date(hour)" if op.get_bind().dialect.name == "sqlite" else "CAST(hour AS DATE)"
    op.execute(f"""
        INSERT INTO link_days (day, code, human, preview, bot, visitors)
        SELECT r.day, r.code, r.human, r.preview, r.bot,
               (SELECT count(*) FROM visitor_days v WHERE v.day = r.day AND v.code = r.code)
        FROM (SELECT {day} AS day, code,
                     sum(CASE WHEN agent_class = 'human' THEN clicks ELSE 0 END) AS human,
                     sum(CASE WHEN agent_class = 'preview' THEN clicks ELSE 0 END) AS preview,
                     sum(CASE WHEN agent_class = 'bot' THEN clicks ELSE 0 END) AS bot
              FROM click_rollups GROUP BY {day}, code) AS r
    """)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_ordered_at')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_slot_at')
        batch_op.drop_column('impressions')
        batch_op.drop_column('recipients')
    with op.batch_alter_table('link_days', schema=None) as batch_op:
        batch_op.drop_index('ix_link_days_code_day')
    op.drop_table('link_days')
