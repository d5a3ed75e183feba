"""notice fan-outs: a large dispatch's links and messages made after its commit, a chunk at a time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notice_fanouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.Column('order_ids', sa.JSON(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_notice_fanouts_activation_id_activations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_fanouts'))
    )
    with op.batch_alter_table('notice_fanouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_fanouts_activation_id'), ['activation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_fanouts_finished_at'), ['finished_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notice_fanouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_fanouts_finished_at'))
        batch_op.drop_index(batch_op.f('ix_notice_fanouts_activation_id'))

    op.drop_table('notice_fanouts')
