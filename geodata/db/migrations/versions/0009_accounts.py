"""accounts, role grants, API tokens, web sessions, append-only audit log

Revision ID: 0009_accounts
Revises: 0007_assessment
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from geodata.db.migrate import grant_app

revision = '0009_accounts'
down_revision = '0007_assessment'
branch_labels = None
depends_on = None

#: What the web server may do (sign-in, sessions, tokens, the admin page); added to migration 0005's.
APP_GRANTS = {
    "account": "SELECT, INSERT, UPDATE",      # failed attempts, lockouts, password changes, new accounts
    "role_grant": "SELECT, INSERT, DELETE",   # the admin page grants and revokes
    "api_token": "SELECT, INSERT, UPDATE",    # last use, revocation
    "web_session": "SELECT, INSERT, UPDATE",  # sign-out revokes
    "audit_log": "SELECT, INSERT",            # append-only
}
APP_SEQUENCES = ("account_id_seq", "role_grant_id_seq", "api_token_id_seq")

APPEND_ONLY = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log 只能追加，不能修改或删除 / audit_log is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""


def _tstz():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'account',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('login', sa.String(40), nullable=False),
        sa.Column('display_name', sa.String(100), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False, server_default='user'),
        sa.Column('official_id', sa.Integer(), sa.ForeignKey('official.id'), nullable=True),
        sa.Column('password_hash', sa.String(200), nullable=True),
        sa.Column('password_is_default', sa.Boolean(), nullable=False, server_default=sa.text('false')),
        sa.Column('demo', sa.Boolean(), nullable=False, server_default=sa.text('false')),
        sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.text('false')),
        sa.Column('failed_attempts', sa.SmallInteger(), nullable=False, server_default='0'),
        sa.Column('last_failed_at', _tstz(), nullable=True),
        sa.Column('locked_until', _tstz(), nullable=True),
        sa.Column('password_changed_at', _tstz(), nullable=True),
        sa.Column('created_at', _tstz(), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('user', 'display')", name='account_kind'),
        sa.CheckConstraint("login ~ '^[a-z0-9][a-z0-9._-]{1,39}$'", name='account_login_format'),
    )
    op.create_index('account_login_uq', 'account', ['login'], unique=True)
    op.create_index('account_official_uq', 'account', ['official_id'], unique=True,
                    postgresql_where=sa.text('official_id IS NOT NULL'))
    op.create_table(
        'role_grant',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), sa.ForeignKey('account.id', ondelete='CASCADE'), nullable=False),
        sa.Column('role', sa.String(30), nullable=False),
        sa.Column('grid_code', sa.String(14), nullable=True),
        sa.Column('created_at', _tstz(), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("grid_code IS NULL OR grid_code ~ '^[0-9]{14}$'", name='role_grant_grid_format'),
    )
    op.execute("CREATE UNIQUE INDEX role_grant_uq ON role_grant (account_id, role, coalesce(grid_code, ''))")
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), sa.ForeignKey('account.id', ondelete='CASCADE'), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('label', sa.String(100), nullable=False, server_default=''),
        sa.Column('created_at', _tstz(), nullable=False, server_default=sa.func.now()),
        sa.Column('last_used_at', _tstz(), nullable=True),
        sa.Column('revoked_at', _tstz(), nullable=True),
    )
    op.create_index('api_token_account_idx', 'api_token', ['account_id'])
    op.create_table(
        'web_session',
        sa.Column('id_hash', sa.String(64), primary_key=True),
        sa.Column('account_id', sa.Integer(), sa.ForeignKey('account.id', ondelete='CASCADE'), nullable=False),
        sa.Column('created_at', _tstz(), nullable=False),
        sa.Column('expires_at', _tstz(), nullable=False),
        sa.Column('revoked_at', _tstz(), nullable=True),
    )
    op.create_index('web_session_account_idx', 'web_session', ['account_id'])
    op.create_table(
        'audit_log',
        sa.Column('id', sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column('at', _tstz(), nullable=False, server_default=sa.func.now()),
        sa.Column('event', sa.String(40), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('actor_account_id', sa.Integer(), nullable=True),
        sa.Column('login', sa.String(100), nullable=True),
        sa.Column('detail', postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index('audit_log_at_idx', 'audit_log', ['at'])
    op.create_index('audit_log_account_idx', 'audit_log', ['account_id'])
    op.execute(APPEND_ONLY)
    grant_app(APP_GRANTS, APP_SEQUENCES)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log")
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ('audit_log', 'web_session', 'api_token', 'role_grant', 'account'):
        op.drop_table(table)
