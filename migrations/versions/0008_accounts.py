"""accounts: sessions, login attempts, second factor, invitations

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
    pass


def downgrade():
    pass
