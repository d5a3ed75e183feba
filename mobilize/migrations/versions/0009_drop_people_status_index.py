"""people: drop the index on status (an activation sets tens of thousands of statuses; no query needs it)

Most people share a status (available), so no query finds them faster through it: people lists,
readiness and candidate loading filter by community first. Every status change paid for it: an
activation's 30,000 "deployed" cost twice as long on SQLite with it as without.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 16:30:00
"""

from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_status'))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_status'), ['status'], unique=False)
