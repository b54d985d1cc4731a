"""reports: daily link and order rollups, reach of posts, report indexes

Revision ID: 0005
Revises: 0006

`link_days` is filled from the existing hourly rollups and daily visitors, `order_days` from the orders, so
reports over what was recorded before this revision are the same as over what is recorded after it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0006'
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
    op.create_table('order_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('item', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('variant', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('revenue_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'key')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipients', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('impressions', sa.Integer(), nullable=True))
        batch_op.create_index('ix_deliveries_slot_at', ['slot_at'], unique=False)
    _backfill_link_days()
    _backfill_order_days()


def _backfill_link_days() -> None:
    day = "date(hour)" if op.get_bind().dialect.name == "sqlite" else "CAST(hour AT TIME ZONE 'UTC' AS DATE)"
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


def _backfill_order_days() -> None:
    from drainage.store.rollups import cents, order_key  # the same key the tracker writes

    conn = op.get_bind()
    totals: dict[tuple[object, str], list[object]] = {}
    for campaign, channel, item, variant, currency, amount, ordered_at in conn.execute(sa.text(
            "SELECT campaign, channel, item, variant, currency, amount, ordered_at FROM orders")):
        moment = ordered_at if isinstance(ordered_at, datetime) else datetime.fromisoformat(str(ordered_at))
        day = (moment.astimezone(UTC) if moment.tzinfo else moment).date()
        key = order_key(campaign, channel, item, variant, currency)
        row = totals.setdefault((day, key), [campaign, channel, item, variant, currency, 0, 0])
        row[5] += 1
        row[6] += cents(Decimal(str(amount)))
    table = sa.table('order_days', sa.column('day', sa.Date()), sa.column('key'), sa.column('campaign'),
                     sa.column('channel'), sa.column('item'), sa.column('variant'), sa.column('currency'),
                     sa.column('orders'), sa.column('revenue_cents'))
    rows = [dict(zip(("campaign", "channel", "item", "variant", "currency", "orders", "revenue_cents"), v,
                     strict=True), day=day, key=key) for (day, key), v in totals.items()]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_slot_at')
        batch_op.drop_column('impressions')
        batch_op.drop_column('recipients')
    with op.batch_alter_table('link_days', schema=None) as batch_op:
        batch_op.drop_index('ix_link_days_code_day')
    op.drop_table('link_days')
    op.drop_table('order_days')
