"""phone links: drop the index on person_id alone (the unique (person_id, activation_id) index serves it)

Every link inserted paid for both indexes; lookups by person, with or without the activation, and the
cascade from ``people`` use the unique index's leading column on SQLite and PostgreSQL alike.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 07:10:00
"""

from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('phone_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_links_person_id'))


def downgrade() -> None:
    with op.batch_alter_table('phone_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_links_person_id'), ['person_id'], unique=False)
