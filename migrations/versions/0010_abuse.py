"""abuse: one submission per public form token

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
    pass


def downgrade():
    pass
