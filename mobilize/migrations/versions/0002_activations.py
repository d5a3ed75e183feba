"""activations posts orders branches places pins

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:51:36.247869
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope_unit_id', sa.Integer(), nullable=False),
    sa.Column('hazard', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('is_drill', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('started_by', sa.String(length=96), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=96), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['scope_unit_id'], ['org_units.id'], name=op.f('fk_activations_scope_unit_id_org_units'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activations')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_activations_idempotency_key'))
    )
    with op.batch_alter_table('activations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activations_scope_unit_id'), ['scope_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activations_status'), ['status'], unique=False)

    op.create_table('places',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['org_units.id'], name=op.f('fk_places_community_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_places')),
    sa.UniqueConstraint('community_id', 'code', name=op.f('uq_places_community_id_code'))
    )
    with op.batch_alter_table('places', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_places_community_id'), ['community_id'], unique=False)

    op.create_table('activation_locks',
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_activation_locks_activation_id_activations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['community_id'], ['org_units.id'], name=op.f('fk_activation_locks_community_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('community_id', 'mode', name=op.f('pk_activation_locks'))
    )
    with op.batch_alter_table('activation_locks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activation_locks_activation_id'), ['activation_id'], unique=False)

    op.create_table('posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('group', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=128), nullable=False),
    sa.Column('name_en', sa.String(length=128), nullable=False),
    sa.Column('site_code', sa.String(length=64), nullable=True),
    sa.Column('site_name', sa.String(length=128), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('headcount', sa.Integer(), nullable=False),
    sa.Column('filled', sa.Integer(), nullable=False),
    sa.Column('skills_all', sa.JSON(), nullable=False),
    sa.Column('skills_any', sa.JSON(), nullable=False),
    sa.Column('leader_required', sa.Boolean(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('shift_hours', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_posts_activation_id_activations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['community_id'], ['org_units.id'], name=op.f('fk_posts_community_id_org_units'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts')),
    sa.UniqueConstraint('activation_id', 'key', name=op.f('uq_posts_activation_id_key'))
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_posts_activation_id'), ['activation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_posts_community_id'), ['community_id'], unique=False)

    op.create_table('solve_records',
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.Column('solved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('inputs', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_solve_records_activation_id_activations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('activation_id', name=op.f('pk_solve_records'))
    )
    op.create_table('branches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=96), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('joint', sa.Boolean(), nullable=False),
    sa.Column('secretary_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('formed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_branches_activation_id_activations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['community_id'], ['org_units.id'], name=op.f('fk_branches_community_id_org_units'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['secretary_id'], ['people.id'], name=op.f('fk_branches_secretary_id_people'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branches')),
    sa.UniqueConstraint('activation_id', 'key', name=op.f('uq_branches_activation_id_key'))
    )
    with op.batch_alter_table('branches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_branches_activation_id'), ['activation_id'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('leader_part', sa.Boolean(), nullable=False),
    sa.Column('borrowed', sa.Boolean(), nullable=False),
    sa.Column('travel_minutes', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('explanation', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_reason', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['activation_id'], ['activations.id'], name=op.f('fk_orders_activation_id_activations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_orders_person_id_people'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_orders_post_id_posts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_activation_status', ['activation_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_post_id'), ['post_id'], unique=False)
        batch_op.create_index('uq_orders_open_person', ['person_id'], unique=True, sqlite_where=sa.text("status IN ('notified', 'acknowledged', 'en_route', 'arrived', 'escalated')"), postgresql_where=sa.text("status IN ('notified', 'acknowledged', 'en_route', 'arrived', 'escalated')"))

    op.create_table('pins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('hazard', sa.String(length=32), nullable=False),
    sa.Column('post_code', sa.String(length=64), nullable=False),
    sa.Column('site_code', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_pins_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pins')),
    sa.UniqueConstraint('person_id', 'hazard', name=op.f('uq_pins_person_id_hazard'))
    )
    with op.batch_alter_table('pins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pins_person_id'), ['person_id'], unique=False)

    op.create_table('branch_members',
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('party_group', sa.String(length=96), nullable=True),
    sa.Column('group_head', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_branch_members_branch_id_branches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_branch_members_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('branch_id', 'person_id', name=op.f('pk_branch_members'))
    )


def downgrade() -> None:
    op.drop_table('branch_members')
    with op.batch_alter_table('pins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pins_person_id'))

    op.drop_table('pins')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('uq_orders_open_person', sqlite_where=sa.text("status IN ('notified', 'acknowledged', 'en_route', 'arrived', 'escalated')"), postgresql_where=sa.text("status IN ('notified', 'acknowledged', 'en_route', 'arrived', 'escalated')"))
        batch_op.drop_index(batch_op.f('ix_orders_post_id'))
        batch_op.drop_index(batch_op.f('ix_orders_person_id'))
        batch_op.drop_index('ix_orders_activation_status')

    op.drop_table('orders')
    with op.batch_alter_table('branches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_branches_activation_id'))

    op.drop_table('branches')
    op.drop_table('solve_records')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posts_community_id'))
        batch_op.drop_index(batch_op.f('ix_posts_activation_id'))

    op.drop_table('posts')
    with op.batch_alter_table('activation_locks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activation_locks_activation_id'))

    op.drop_table('activation_locks')
    with op.batch_alter_table('places', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_places_community_id'))

    op.drop_table('places')
    with op.batch_alter_table('activations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activations_status'))
        batch_op.drop_index(batch_op.f('ix_activations_scope_unit_id'))

    op.drop_table('activations')
