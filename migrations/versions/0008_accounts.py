"""accounts: server-side sessions, invitation and reset links, when a password was set

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:10:00

"""
from alembic import op
import sqlalchemy as sa

import engage.core.db


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_changed_at',
                                      engage.core.db.UTCDateTime(timezone=True), nullable=True))
    # Every existing account has a password, set when it was created.
    op.execute('UPDATE "user" SET password_changed_at = created_at')

    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', engage.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=16), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.CheckConstraint("ended_reason IN ('logout', 'idle', 'expired', 'password', 'deactivated', 'ended')", name=op.f('ck_user_session_ended_reason')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index('ix_user_session_user_id_ended_at', ['user_id', 'ended_at'],
                              unique=False)

    op.create_table('account_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=8), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', engage.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("purpose IN ('invite', 'reset')", name=op.f('ck_account_token_purpose')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_account_token_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_account_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_account_token_token_hash'))
    )
    with op.batch_alter_table('account_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_token_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('account_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_token_user_id'))
    op.drop_table('account_token')
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index('ix_user_session_user_id_ended_at')
    op.drop_table('user_session')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
