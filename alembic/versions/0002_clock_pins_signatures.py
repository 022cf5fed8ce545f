"""training flag, PIN events, signature digest

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sterilog.models

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database made before this revision is a live one: training stays false.
    with op.batch_alter_table('settings', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('training', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('marks', sa.Text(), nullable=True))
    op.create_table('pin_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('pin_hash', sa.String(length=300), nullable=True),
    sa.Column('at', sterilog.models.UTCDateTime(), nullable=False),
    sa.Column('recorded_at', sterilog.models.UTCDateTime(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('set', 'failed', 'ok', 'unlock')", name=op.f('ck_pin_events_kind')),
    sa.ForeignKeyConstraint(['operator_id'], ['staff.id'], name=op.f('fk_pin_events_operator_id_staff')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_pin_events_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pin_events'))
    )
    with op.batch_alter_table('pin_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pin_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pin_events_staff_id'), ['staff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pin_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pin_events_staff_id'))
        batch_op.drop_index(batch_op.f('ix_pin_events_at'))
    op.drop_table('pin_events')
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.drop_column('marks')
        batch_op.drop_column('digest')
    with op.batch_alter_table('settings', schema=None) as batch_op:
        batch_op.drop_column('training')
