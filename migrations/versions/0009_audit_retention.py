"""audit: no foreign keys, append-only on PostgreSQL; retention

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:10:00

"""
from alembic import op
import sqlalchemy as sa

import engage.core.db


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
