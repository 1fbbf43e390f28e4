"""the issue search's character n-grams (issue #11: the map's search box bounded at 10⁶ issues)

The map's search box finds an issue by any part of its number or a word of its title
(``geodata/maps/search.py``). At 10⁶ issues the old statement (``number ILIKE '%q%' OR title ILIKE
'%q%'`` ordered by number) took ≈ 2 s: the ORDER BY made every match be found and sorted, and the
most typed words — two Chinese characters (垃圾, 占道) — give pg_trgm no trigram for a ``LIKE``
pattern, so migration 0004's trigram indexes cannot help and the table is scanned. (pg_bigm, the
bigram index made for this, is not packaged in Debian 12.)

Under row-level security no index serves a text search: PostgreSQL uses a condition as an index
condition below the policy only if its operator is LEAKPROOF, and neither ``LIKE`` nor the array
operators are (declaring one so needs a superuser). So the search reads a table of its own:

- ``issue_search`` (one row per issue: ``reported_at`` and ``keys``), which the app role may not
  read, kept by statement-level triggers on ``issue`` (one upsert per statement, transition tables,
  only rows whose searched columns changed; a deleted issue's row goes by its foreign key).
- ``keys``: the distinct characters and pairs of adjacent characters of ``lower(number || E'\n' ||
  title)`` (``gw_issue_grams``), and the scope tokens of the grid and responsibility-chain part of
  THE visibility rule (``s:`` street, ``c:`` community, ``g:`` block code, ``o:`` each chain
  official). GIN index ``issue_search_keys``.
- ``gw_issue_search(q, before, cap)`` (SECURITY DEFINER, so it may read the table; the caller's
  scope settings untouched): ids of at most ``cap`` issues reported before ``before`` whose keys
  hold every pair of ``q``'s (its one character, for a one-character text: ``gw_query_grams``) and,
  unless the scope is everything, one of the scope's tokens (``gw_scope_tokens``) — then joined to
  ``issue`` by id, where the caller's row-level security applies, and rechecked with ``ILIKE`` on
  the number and the title. The pairs are a necessary condition of the match (PostgreSQL's
  ``ILIKE`` on a multibyte encoding compares ``lower()`` of both sides, as the grams do); the
  newline only adds pairs across the columns' border, which the recheck rejects. Exactly the rows
  the caller may see, but for ``gw_scope_issues()`` (the issues this transaction reported), which
  have no tokens: they are new, and the search reads the newest issues from ``issue`` itself.

The search (``geodata/maps/search.py``) says what is bounded and how.

Revision ID: 0022_issue_search
Revises: 0021_map_cells
Create Date: 2026-12-03 15:00:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0022_issue_search'
down_revision = '0021_map_cells'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

#: the columns of ``issue`` the keys are made of (and ``reported_at``)
KEYED = ("number", "title", "street_code", "community_code", "grid_code",
         "assignee_id", "grid_leader_id", "responsible_id", "leader_in_charge_id")


def _keys(row: str = "") -> str:
    return f"gw_issue_search_keys({', '.join(row + c for c in KEYED)})"


FUNCTIONS = r"""
CREATE FUNCTION gw_text_grams(t text, unigrams boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr(lower(t), i, 1) AS g FROM generate_series(1, length(t)) AS i WHERE unigrams
    UNION ALL
    SELECT substr(lower(t), i, 2) FROM generate_series(1, length(t) - 1) AS i) AS s $$;
CREATE FUNCTION gw_query_grams(q text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT gw_text_grams(q, length(q) = 1) $$;
CREATE FUNCTION gw_issue_search_keys(number text, title text, street text, community text, block text,
                                     a integer, g integer, r integer, l integer) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT gw_text_grams(coalesce(number, '') || E'\n' || coalesce(title, ''), true)
         || ARRAY['s:' || street, 'c:' || community, 'g:' || block]
         || ARRAY(SELECT 'o:' || x FROM unnest(ARRAY[a, g, r, l]) AS x WHERE x IS NOT NULL) $$;
CREATE FUNCTION gw_scope_tokens() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT ARRAY(SELECT 's:' || x FROM unnest(gw_scope_streets()) AS x)
         || ARRAY(SELECT 'c:' || x FROM unnest(gw_scope_communities()) AS x)
         || ARRAY(SELECT 'g:' || x FROM unnest(gw_scope_prefixes()) AS x)
         || ARRAY(SELECT 'o:' || gw_scope_official() WHERE gw_scope_official() IS NOT NULL) $$;
"""

TABLE = f"""
CREATE TABLE issue_search (
  issue_id bigint PRIMARY KEY REFERENCES issue (id) ON DELETE CASCADE,
  reported_at timestamptz NOT NULL,
  keys text[] NOT NULL);
SELECT set_config('gridwatch.grids', '*', true);
INSERT INTO issue_search SELECT id, reported_at, {_keys()} FROM issue;
SELECT set_config('gridwatch.grids', '', true);
CREATE INDEX issue_search_keys ON issue_search USING gin (keys);
ANALYZE issue_search;
"""

_CHANGED = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in ("reported_at", *KEYED))
SYNC = f"""
CREATE FUNCTION gw_issue_search_sync() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO issue_search SELECT id, reported_at, {_keys()} FROM new_rows;
  ELSE
    INSERT INTO issue_search AS s
    SELECT n.id, n.reported_at, {_keys('n.')}
    FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {_CHANGED}
    ON CONFLICT (issue_id) DO UPDATE SET reported_at = excluded.reported_at, keys = excluded.keys;
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION gw_issue_search_sync() FROM PUBLIC;
CREATE TRIGGER issue_search_ins AFTER INSERT ON issue REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_issue_search_sync();
CREATE TRIGGER issue_search_upd AFTER UPDATE ON issue REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_issue_search_sync();
"""

#: planned for each call (EXECUTE): the query's grams are constants the planner estimates from the
#: index's statistics. ``q`` is literal: LIKE's wildcards and its escape are escaped.
SEARCH = r"""
CREATE FUNCTION gw_issue_search(q text, before timestamptz, cap integer) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  pat text := '%' || replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  tokens text[] := CASE WHEN gw_scope_all() THEN NULL ELSE gw_scope_tokens() END;
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT i.id FROM (SELECT issue_id FROM issue_search WHERE keys @> %L::text[] %s AND reported_at < $1
                       LIMIT $2 * 4) k
     JOIN issue i ON i.id = k.issue_id WHERE i.number ILIKE $3 OR i.title ILIKE $3 LIMIT $2',
    gw_query_grams(q), CASE WHEN tokens IS NULL THEN '' ELSE format('AND keys && %L::text[]', tokens) END)
  USING before, cap, pat;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute(TABLE)
    op.execute(SYNC)
    op.execute(SEARCH)
    grant_app(APP_GRANTS, functions=("gw_query_grams(text)", "gw_scope_tokens()",
                                     "gw_issue_search(text, timestamptz, integer)"))


def downgrade() -> None:
    # IF EXISTS: a database migrated while this revision was an empty placeholder (commit e45159f)
    # is brought to this one by a downgrade to 0021 and an upgrade
    op.execute("DROP TRIGGER IF EXISTS issue_search_ins ON issue; DROP TRIGGER IF EXISTS issue_search_upd ON issue")
    op.execute("DROP FUNCTION IF EXISTS gw_issue_search_sync(); DROP FUNCTION IF EXISTS gw_issue_search(text, timestamptz, integer)")
    op.execute("DROP TABLE IF EXISTS issue_search")
    op.execute("DROP FUNCTION IF EXISTS gw_scope_tokens(); DROP FUNCTION IF EXISTS gw_issue_search_keys"
               "(text, text, text, text, text, integer, integer, integer, integer); "
               "DROP FUNCTION IF EXISTS gw_query_grams(text); DROP FUNCTION IF EXISTS gw_text_grams(text, boolean)")
    # the first draft of this revision (an index on issue)
    op.execute("DROP INDEX IF EXISTS issue_search_grams; DROP FUNCTION IF EXISTS gw_issue_grams(text, text)")
