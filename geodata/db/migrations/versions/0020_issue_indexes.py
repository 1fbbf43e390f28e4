"""the issue table's indexes: none that row-level security keeps from being used (issue #15)

A change set's re-assignment moves every open issue of a block in one UPDATE (``geodata/grids/
changesets.reassign_issues``); the grid and chain columns it sets are indexed, so no row can be a
HOT update and every index of ``issue`` gets a new entry per row. Measured on copies of the
``python -m bench grids`` database (10⁵ open issues moved; the backend's CPU time of the UPDATE,
less noisy than its wall time on a shared machine; 0022's search trigger disabled to see the
indexes' share): 5.1–5.6 s with every index; without the GiST index on ``location`` −0.7 s,
without the GIN trigram index of the title −0.75 s, of the number −0.4 s, without any one btree
−0.05–0.3 s; with no secondary index 2.4 s (the rest: the foreign-key checks of the chain's three
officials ≈ 1.3 s, the heap, the transition tables).

**Dropped — never used by the application.** ``issue`` has FORCE ROW LEVEL SECURITY and no role
of the application bypasses it (the owner included). Below a policy PostgreSQL takes a condition as
an index condition only if its operator is LEAKPROOF: btree's ``=`` / ``<`` on text, integers and
timestamps are; PostGIS's ``&&`` (and ``ST_Intersects`` / ``ST_Covers`` / ``<->``, which rest on
it) and ``LIKE`` / ``ILIKE`` are not (declaring them so needs a superuser). So

- ``issue_location_gist`` (0001): a bounding-box or nearest query on issues as the app or owner
  role is a sequential scan with the index there (EXPLAIN as ``gridwatch_app``: ``Parallel Seq
  Scan … Filter: (policy) AND (location && …)``; as a superuser the same query uses the index).
  The re-assignment already copies its candidates into a temporary table with a GiST index of its
  own for that reason;
- ``issue_title_trgm``, ``issue_number_trgm`` (0004, made before row-level security came in
  0005): ``ILIKE '%…%'`` scans the table with them; the map's search has its own n-gram table
  (0022). The number's unique index (``issue_number_key``, btree ``=`` / ranges) stays.

The app's reads that could have used them — the map's markers (whole view and a small box), heat
tile, grid metrics, search (a word, a number), overdue feed, weekly notices, the assessment's
levels; as everything and as a planner — use the same indexes before and after on a 10⁵-issue
copy (EXPLAIN ANALYZE of each statement; none used these three). Only superuser sessions
(maintenance, the tests' own checks) and the RLS benchmark's bypass role lose them.

**Made partial — rows they can never match left out.** ``issue_closed_idx`` (closed_at) and
``issue_due_idx`` (due_at), added by 0015 for the assessment's range conditions (and the weekly
notices' ``closed_at >= t0 AND closed_at < t1``): a comparison is never true for NULL, so ``WHERE
closed_at IS NOT NULL`` / ``WHERE due_at IS NOT NULL`` serve every such query (PostgreSQL proves the
predicate from the strict comparison) and an open issue (no closing time) — a reported one not
yet given a deadline too — gets no entry when it is moved or changed.

The other indexes are used by the policies' equality forms, the workflow's and the map's reads,
and the foreign keys' checks from ``official``; they stay.
A re-assignment of 10⁵ issues, the UPDATE's CPU time: 5.3, 5.6 → 3.2, 3.0 s (alternating copies
before / after, 0022's search trigger disabled; with it 18.4 → 15.8 s — README, issue 15).

Revision ID: 0020_issue_indexes
Revises: 0019_rls_code_columns
Create Date: 2026-12-03 15:00:00
"""
from alembic import op

revision = '0020_issue_indexes'
down_revision = '0019_rls_code_columns'
branch_labels = None
depends_on = None

#: (name, column) of the indexes made partial: the column IS NOT NULL
PARTIAL = (("issue_closed_idx", "closed_at"), ("issue_due_idx", "due_at"))


def upgrade() -> None:
    # IF EXISTS / IF NOT EXISTS: a database migrated while this revision was an empty placeholder
    # (commit e45159f) is brought to this one by a downgrade to 0019 and an upgrade
    op.execute("DROP INDEX IF EXISTS issue_location_gist")
    op.execute("DROP INDEX IF EXISTS issue_title_trgm")
    op.execute("DROP INDEX IF EXISTS issue_number_trgm")
    for name, column in PARTIAL:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON issue ({column}) WHERE {column} IS NOT NULL")


def downgrade() -> None:
    for name, column in PARTIAL:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON issue ({column})")
    # pg_trgm: 0024's downgrade makes it again, but `gridwatch db up` drops it whenever nothing uses it
    # (geodata.db.roles.RETIRED_EXTENSIONS), also on a database not yet at 0024
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX IF NOT EXISTS issue_number_trgm ON issue USING gin (number gin_trgm_ops)")
    op.execute("CREATE INDEX IF NOT EXISTS issue_title_trgm ON issue USING gin (title gin_trgm_ops)")
    op.execute("CREATE INDEX IF NOT EXISTS issue_location_gist ON issue USING gist (location)")
