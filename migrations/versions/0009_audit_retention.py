"""audit: no foreign keys, append-only on PostgreSQL; retention

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:10:00

The audit log must say what happened even after the user or patient it names is deleted
or erased: its ``user_id`` and ``patient_id`` stop being foreign keys (ON DELETE SET NULL
rewrote them). A trigger then refuses every UPDATE; on PostgreSQL it also refuses every
DELETE except retention's, which names its cut-off in a transaction-local setting
(``engage.audit_retention_before``) and may only delete rows older than it, and never a
row younger than a year. SQLite gets the UPDATE trigger only: the test fixtures empty its
tables with DELETE (SQLite has no TRUNCATE), and anyone who can write the file can drop a
trigger anyway. Row-level triggers do not fire on TRUNCATE, so PostgreSQL's fixtures keep
working. docs/security.md says what this does and does not protect against.
"""
from alembic import op
import sqlalchemy as sa

import engage.core.db


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cutoff text := current_setting('engage.audit_retention_before', true);
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(cutoff, '') <> ''
       AND cutoff::timestamptz <= now() - interval '365 days'
       AND OLD.at < cutoff::timestamptz THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only retention may delete audit events, and only old ones.';
END
$$
"""

PG_TRIGGER = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
"""

SQLITE_TRIGGER = """
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused');
END
"""


def upgrade():
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_audit_event_user_id_user'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_audit_event_patient_id_patient'),
                                 type_='foreignkey')
        batch_op.create_index('ix_audit_event_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_event_object', ['object_type', 'object_id', 'at'],
                              unique=False)
        batch_op.create_index('ix_audit_event_ip_at', ['ip', 'at'], unique=False)
    # After the batch: on SQLite it rebuilds the table, which would drop a trigger made before.
    if dialect == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    elif dialect == 'sqlite':
        op.execute(SQLITE_TRIGGER)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    elif dialect == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
    # The foreign keys come back, so rows naming a user or patient that is gone lose it.
    op.execute('UPDATE audit_event SET user_id = NULL WHERE user_id IS NOT NULL AND '
               'user_id NOT IN (SELECT id FROM "user")')
    op.execute('UPDATE audit_event SET patient_id = NULL WHERE patient_id IS NOT NULL AND '
               'patient_id NOT IN (SELECT id FROM patient)')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_ip_at')
        batch_op.drop_index('ix_audit_event_object')
        batch_op.drop_index('ix_audit_event_at')
        batch_op.create_foreign_key(batch_op.f('fk_audit_event_user_id_user'), 'user',
                                    ['user_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_audit_event_patient_id_patient'), 'patient',
                                    ['patient_id'], ['id'], ondelete='SET NULL')
