"""one number that moves whenever anything an API token's principal is built from changes (issue
#10, RLS within 10 %)

The API's token cache (``geodata.access.accounts.TokenCache``) checks a kept principal at every use.
It did so by reading, in the transaction's first statement, an md5 over everything the principal
is built from — the token (revoked?), the account (kind, login, name, official, disabled), its
grants, the official (active, name) and the official's assignments valid now: four sub-queries and
a hash, ≈ 0.26 ms more than the settings alone on each API call (``bench rls``, 2026-12-03).

Now those tables say when they change: a statement that adds, removes or changes what a principal
is built from bumps ``principal_epoch.n`` (statement triggers; an UPDATE only when it sets one of
the columns that matter, so noting a token's last use or a failed sign-in moves nothing), in the
writer's transaction — so the new number is seen exactly when the change is. A use reads the number
(one row, one column); unchanged, the kept principal answers. What changes without a write — an
assignment's period beginning or ending — the cache keeps the time of (the official's next
``valid_from`` or ``valid_to`` after the read) and reads in full from then on.

The bump runs as the owner (``SECURITY DEFINER``): the app role writes tokens, accounts and
grants (the admin page) and assignments (a planner's change set) but may only read the number.

Revision ID: 0029_principal_epoch
Revises: 0028_append_checks
Create Date: 2026-12-03 21:40:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0029_principal_epoch'
down_revision = '0028_append_checks'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {"principal_epoch": "SELECT"}

#: (table, the columns whose UPDATE matters; None: any)
WATCHED: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("api_token", ("token_hash", "account_id", "revoked_at")),
    ("account", ("kind", "login", "display_name", "official_id", "disabled")),
    ("role_grant", None),
    ("official", ("id", "name", "active")),
    ("grid_assignment", None),
)

UPGRADE = r"""
CREATE TABLE principal_epoch (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  n bigint NOT NULL
);
INSERT INTO principal_epoch VALUES (true, 0);
CREATE FUNCTION gw_principal_bump() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE principal_epoch SET n = n + 1;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION gw_principal_bump() FROM PUBLIC;
"""


def _trigger(table: str, columns: tuple[str, ...] | None) -> str:
    update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
    return (f"CREATE TRIGGER {table}_principal_epoch AFTER INSERT OR DELETE OR {update} OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gw_principal_bump()")


def upgrade() -> None:
    op.execute(UPGRADE)
    for table, columns in WATCHED:
        op.execute(_trigger(table, columns))
    grant_app(APP_GRANTS)


def downgrade() -> None:
    for table, _columns in WATCHED:
        op.execute(f"DROP TRIGGER {table}_principal_epoch ON {table}")
    op.execute("DROP FUNCTION gw_principal_bump(); DROP TABLE principal_epoch")
