"""abuse: one submission per public form token

The public feedback page keeps a row per sending (keyed hashes only: the form's one-time
value, the address with the service, the folded text) so that a form is taken once, a
repeated urgent text joins the first one's alert, and a service's hourly ceiling can be
counted (engage/feedback/flood.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:10:00

"""
from alembic import op
import sqlalchemy as sa

import engage.core.db


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('public_submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('source_hash', sa.String(length=64), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', engage.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('feedback_item_id', sa.Integer(), nullable=True),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_public_submission_alert_id_alert'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['feedback_item_id'], ['feedback_item.id'], name=op.f('fk_public_submission_feedback_item_id_feedback_item'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_public_submission_service_id_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_public_submission')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_public_submission_token_hash'))
    )
    with op.batch_alter_table('public_submission', schema=None) as batch_op:
        batch_op.create_index('ix_public_submission_repeat', ['source_hash', 'text_hash', 'created_at'], unique=False)
        batch_op.create_index('ix_public_submission_service_at', ['service_id', 'created_at'], unique=False)


def downgrade():
    op.drop_table('public_submission')
