"""dispatch: order lifecycle columns, phone links, idempotency

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 00:21:21.937698
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_records',
    sa.Column('scope', sa.String(length=96), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_records'))
    )
    op.create_table('phone_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_phone_links_activation_id_activations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_phone_links_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_links')),
    sa.UniqueConstraint('person_id', 'activation_id', name=op.f('uq_phone_links_person_id_activation_id')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_phone_links_token_hash'))
    )
    with op.batch_alter_table('phone_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_links_activation_id'), ['activation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_links_person_id'), ['person_id'], unique=False)

    # Plain ALTER TABLE (no batch copy on SQLite: it would drop the partial unique index of open orders).
    op.add_column('orders', sa.Column('ack_deadline_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('arrive_deadline_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('arrive_minutes', sa.Integer(), nullable=False, server_default='60'))
    op.add_column('orders', sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('en_route_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('escalation', sa.String(length=8), nullable=True))
    op.add_column('orders', sa.Column('escalation_step', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('orders', sa.Column('note', sa.String(length=200), nullable=True))
    op.add_column('orders', sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_orders_next_check_at'), 'orders', ['next_check_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_orders_next_check_at'), table_name='orders')
    op.drop_column('orders', 'next_check_at')
    op.drop_column('orders', 'note')
    op.drop_column('orders', 'escalation_step')
    op.drop_column('orders', 'escalation')
    op.drop_column('orders', 'closed_at')
    op.drop_column('orders', 'escalated_at')
    op.drop_column('orders', 'arrived_at')
    op.drop_column('orders', 'en_route_at')
    op.drop_column('orders', 'acknowledged_at')
    op.drop_column('orders', 'arrive_minutes')
    op.drop_column('orders', 'arrive_deadline_at')
    op.drop_column('orders', 'ack_deadline_at')

    with op.batch_alter_table('phone_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_links_person_id'))
        batch_op.drop_index(batch_op.f('ix_phone_links_activation_id'))

    op.drop_table('phone_links')
    op.drop_table('idempotency_records')
