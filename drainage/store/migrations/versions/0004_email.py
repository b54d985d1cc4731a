"""email: subscribers, lists, suppressions, fan-outs, recipient ledger

Revision ID: 0004
Revises: 0005

New tables only: nothing to backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('email_fanouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_key', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=False),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('lists', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('pause_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_key')
    )
    with op.batch_alter_table('email_fanouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_fanouts_campaign'), ['campaign'], unique=False)

    op.create_table('subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('attributes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('consent_source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('consent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('ref')
    )
    op.create_table('suppressions',
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('email')
    )
    op.create_table('email_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fanout_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lease', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('leased_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('smtp_code', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['fanout_id'], ['email_fanouts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fanout_id', 'subscriber_id', name='uq_email_recipients_fanout_subscriber')
    )
    with op.batch_alter_table('email_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_email_recipients_claim', ['fanout_id', 'status', 'next_attempt_at'], unique=False)

    op.create_table('list_members',
    sa.Column('list_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('added_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_name', 'subscriber_id')
    )
    with op.batch_alter_table('list_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_list_members_subscriber_id'), ['subscriber_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('list_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_list_members_subscriber_id'))

    op.drop_table('list_members')
    with op.batch_alter_table('email_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_email_recipients_claim')

    op.drop_table('email_recipients')
    op.drop_table('suppressions')
    op.drop_table('subscribers')
    with op.batch_alter_table('email_fanouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_fanouts_campaign'))

    op.drop_table('email_fanouts')
