"""activation policy: the cost policy an activation was solved with (borrowing on/off, weights)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 02:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('activations', schema=None) as batch_op:
        batch_op.drop_column('policy')
