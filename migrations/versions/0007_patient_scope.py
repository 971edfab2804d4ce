"""patients belong to a service; API keys bound to services, with scopes and expiry

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:10:00

Each existing patient goes to the service of its earliest invitation, response, enrolment,
feedback item or alert (the first service when it has none). A patient used by several
services is split: the other services each get their own copy of the record, and their rows
(invitations, responses, enrolments, feedback items, alerts, messages) move to it. Audit
rows keep the patient id they were written with. Existing API keys keep what they could do
(write, every service that exists now); review them with ``engage apikeys list``.
"""
from alembic import op
import sqlalchemy as sa

import engage.core.db


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PATIENT_COLUMNS = ('ref', 'language', 'email', 'phone', 'timezone', 'channel',
                   'quiet_hours', 'opted_out_at', 'opt_out_source', 'created_at')


def _patient_table():
    return sa.table(
        'patient', sa.column('id', sa.Integer), sa.column('service_id', sa.Integer),
        sa.column('ref', sa.String), sa.column('language', sa.String),
        sa.column('email', sa.String), sa.column('phone', sa.String),
        sa.column('timezone', sa.String), sa.column('channel', sa.String),
        sa.column('quiet_hours', sa.String),
        sa.column('opted_out_at', engage.core.db.UTCDateTime(timezone=True)),
        sa.column('opt_out_source', sa.String),
        sa.column('created_at', engage.core.db.UTCDateTime(timezone=True)),
    )


# (service id, first use) of every patient's rows, one statement per kind of row.
USES = (
    "SELECT patient_id, service_id, created_at FROM invitation",
    "SELECT patient_id, service_id, started_at FROM response",
    "SELECT e.patient_id, p.service_id, e.created_at FROM enrolment e "
    "JOIN protocol p ON p.id = e.protocol_id",
    "SELECT patient_id, service_id, received_at FROM feedback_item "
    "WHERE patient_id IS NOT NULL",
    "SELECT patient_id, service_id, created_at FROM alert WHERE patient_id IS NOT NULL",
)

# Rows of one service that move to that service's own copy of the patient.
MOVES = (
    "UPDATE invitation SET patient_id = :new WHERE patient_id = :old "
    "AND service_id = :service",
    "UPDATE response SET patient_id = :new WHERE patient_id = :old AND service_id = :service",
    "UPDATE enrolment SET patient_id = :new WHERE patient_id = :old "
    "AND protocol_id IN (SELECT id FROM protocol WHERE service_id = :service)",
    "UPDATE feedback_item SET patient_id = :new WHERE patient_id = :old "
    "AND service_id = :service",
    "UPDATE alert SET patient_id = :new WHERE patient_id = :old AND service_id = :service",
    # A message follows its questionnaires, or the comment its reply answers.
    "UPDATE message SET patient_id = :new WHERE patient_id = :old AND (id IN ("
    " SELECT mi.message_id FROM message_invitation mi"
    " JOIN invitation i ON i.id = mi.invitation_id WHERE i.service_id = :service)"
    " OR reply_id IN (SELECT r.id FROM feedback_reply r"
    " JOIN feedback_item f ON f.id = r.item_id WHERE f.service_id = :service))",
)


def _assign_services(bind):
    """Give every patient a service, one record per service that uses it."""
    patients = _patient_table()
    rows = bind.execute(sa.select(*[patients.c[n] for n in ('id',) + PATIENT_COLUMNS])
                        ).mappings().all()
    if not rows:
        return
    first_service = bind.execute(sa.text("SELECT min(id) FROM service")).scalar()
    if first_service is None:
        first_service = bind.execute(
            sa.text("INSERT INTO service (slug, name, created_at) "
                    "VALUES ('general', 'General', CURRENT_TIMESTAMP) RETURNING id")
        ).scalar()
    uses = {}  # patient id -> {service id: earliest use}
    for statement in USES:
        for patient_id, service_id, at in bind.execute(sa.text(statement)):
            by_service = uses.setdefault(patient_id, {})
            key = (at is None, str(at))  # compare as text: SQLite returns strings here
            if service_id not in by_service or key < by_service[service_id]:
                by_service[service_id] = key
    for row in rows:
        services = sorted(uses.get(row['id'], {}).items(), key=lambda kv: (kv[1], kv[0]))
        owner = services[0][0] if services else first_service
        bind.execute(patients.update().where(patients.c.id == row['id'])
                     .values(service_id=owner))
        for service_id, _first in services[1:]:
            new_id = bind.execute(
                patients.insert().values(service_id=service_id,
                                         **{n: row[n] for n in PATIENT_COLUMNS})
                .returning(patients.c.id)
            ).scalar()
            for statement in MOVES:
                bind.execute(sa.text(statement),
                             {'new': new_id, 'old': row['id'], 'service': service_id})


def upgrade():
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service_id', sa.Integer(), nullable=True))
        # Dropped first: the copies made for other services repeat the reference.
        batch_op.drop_constraint('uq_patient_ref', type_='unique')
    _assign_services(op.get_bind())
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.alter_column('service_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_patient_service_id_ref'),
                                          ['service_id', 'ref'])
        batch_op.create_foreign_key(batch_op.f('fk_patient_service_id_service'), 'service',
                                    ['service_id'], ['id'])

    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=8), nullable=False,
                                      server_default='write'))
        batch_op.add_column(sa.Column('expires_at',
                                      engage.core.db.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.alter_column('scope', existing_type=sa.String(length=8),
                              server_default=None)
        batch_op.create_check_constraint('scope', "scope IN ('read', 'write')")
    op.create_table('api_key_service',
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id'], name=op.f('fk_api_key_service_api_key_id_api_key'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_api_key_service_service_id_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('api_key_id', 'service_id', name=op.f('pk_api_key_service'))
    )
    with op.batch_alter_table('api_key_service', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_service_service_id'), ['service_id'], unique=False)
    # Keys made before scopes could do everything, everywhere: they keep that until reviewed.
    op.execute("INSERT INTO api_key_service (api_key_id, service_id) "
               "SELECT k.id, s.id FROM api_key k CROSS JOIN service s")


def _merge_patients(bind):
    """Back to one record per reference: each copy's rows move to the oldest record."""
    rows = bind.execute(sa.text("SELECT id, ref FROM patient ORDER BY id")).all()
    keep = {}
    for patient_id, ref in rows:
        if ref not in keep:
            keep[ref] = patient_id
            continue
        for table in ('invitation', 'response', 'enrolment', 'feedback_item', 'alert',
                      'message'):
            bind.execute(sa.text(f"UPDATE {table} SET patient_id = :keep "
                                 "WHERE patient_id = :copy"),
                         {'keep': keep[ref], 'copy': patient_id})
        bind.execute(sa.text("DELETE FROM patient WHERE id = :copy"), {'copy': patient_id})


def downgrade():
    with op.batch_alter_table('api_key_service', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_service_service_id'))
    op.drop_table('api_key_service')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_api_key_scope'), type_='check')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scope')

    _merge_patients(op.get_bind())
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_patient_service_id_service'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_patient_service_id_ref'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_patient_ref'), ['ref'])
        batch_op.drop_column('service_id')
