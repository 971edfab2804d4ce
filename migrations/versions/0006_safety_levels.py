"""safety levels: review beside urgent, the screen's level, misses and false alarms, digests

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:10:00

"""
from alembic import op
import sqlalchemy as sa

import engage.core.db


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('feedback_item', schema=None) as batch_op:
        batch_op.alter_column('urgent_reason', new_column_name='safety_reason',
                              existing_type=sa.String(length=64), existing_nullable=True)
        batch_op.alter_column('urgent_category', new_column_name='safety_category',
                              existing_type=sa.String(length=16), existing_nullable=True)
        batch_op.alter_column('urgent_matches', new_column_name='safety_matches',
                              existing_type=sa.JSON(), existing_nullable=False)
        batch_op.add_column(sa.Column('screen_level', sa.String(length=8), nullable=False,
                                      server_default='none'))
    # Comments taken in before this version: urgent was the only level the screen gave.
    op.execute("UPDATE feedback_item SET screen_level = 'urgent' "
               "WHERE safety_reason IS NOT NULL")
    with op.batch_alter_table('feedback_item', schema=None) as batch_op:
        batch_op.alter_column('screen_level', server_default=None,
                              existing_type=sa.String(length=8), existing_nullable=False)
        batch_op.create_check_constraint(
            'urgency', "urgency IN ('urgent', 'review', 'high', 'normal')")
        batch_op.create_check_constraint(
            'screen_level', "screen_level IN ('urgent', 'review', 'none')")
        batch_op.create_index('ix_feedback_item_urgency_status', ['urgency', 'status'],
                              unique=False)

    op.create_table('safety_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('from_level', sa.String(length=8), nullable=False),
    sa.Column('to_level', sa.String(length=8), nullable=False),
    sa.Column('screen_level', sa.String(length=8), nullable=False),
    sa.Column('rules_version', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('wording', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.CheckConstraint("kind IN ('miss', 'false_alarm', 'raise', 'lower')", name=op.f('ck_safety_change_kind')),
    sa.CheckConstraint("from_level IN ('urgent', 'review', 'none')", name=op.f('ck_safety_change_from_level')),
    sa.CheckConstraint("to_level IN ('urgent', 'review', 'none')", name=op.f('ck_safety_change_to_level')),
    sa.ForeignKeyConstraint(['item_id'], ['feedback_item.id'], name=op.f('fk_safety_change_item_id_feedback_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_safety_change_service_id_service'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_safety_change_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_safety_change'))
    )
    with op.batch_alter_table('safety_change', schema=None) as batch_op:
        batch_op.create_index('ix_safety_change_kind_at', ['kind', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_safety_change_item_id'), ['item_id'], unique=False)

    op.create_table('safety_digest',
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', engage.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_safety_digest_service_id_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('service_id', 'day', name=op.f('pk_safety_digest'))
    )


def downgrade():
    op.drop_table('safety_digest')
    with op.batch_alter_table('safety_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_safety_change_item_id'))
        batch_op.drop_index('ix_safety_change_kind_at')
    op.drop_table('safety_change')
    # Review items become normal again: the old schema has no review level.
    op.execute("UPDATE feedback_item SET urgency = 'normal' WHERE urgency = 'review'")
    with op.batch_alter_table('feedback_item', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_item_urgency_status')
        batch_op.drop_constraint(op.f('ck_feedback_item_screen_level'), type_='check')
        batch_op.drop_constraint(op.f('ck_feedback_item_urgency'), type_='check')
        batch_op.drop_column('screen_level')
        batch_op.alter_column('safety_matches', new_column_name='urgent_matches',
                              existing_type=sa.JSON(), existing_nullable=False)
        batch_op.alter_column('safety_category', new_column_name='urgent_category',
                              existing_type=sa.String(length=16), existing_nullable=True)
        batch_op.alter_column('safety_reason', new_column_name='urgent_reason',
                              existing_type=sa.String(length=64), existing_nullable=True)
