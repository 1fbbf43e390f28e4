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
  read; a deleted issue's row goes by its foreign key.
- ``keys``: the distinct characters and pairs of adjacent characters of ``lower(number || E'\n' ||
  title)`` (``gw_issue_search_keys``) — the text only. GIN index ``issue_search_keys``. No scope
  (grid, community, officials) is kept here: a change set re-assigning 10⁵ issues to new blocks
  and officials (issue #15: ≤ 5 s) must not rewrite 10⁵ rows and their GIN entries. (The first
  version of this revision kept the grid and chain officials' tokens in ``keys``; its UPDATE
  trigger made that re-assignment ≈ 5× slower: 3.0–3.2 → 15.8 s of backend CPU.)
- Kept by two triggers on ``issue``. INSERT: statement-level, one insert per statement from the
  transition table (a bulk load, ``gridwatch demo --issues 1000000``, inserts 10⁵ rows a
  statement). UPDATE: ``AFTER UPDATE OF number, title, reported_at … FOR EACH ROW WHEN (any of
  them changed)`` — PostgreSQL allows no transition table on a trigger with a column list, and a
  row-level one costs nothing to a statement that does not SET those columns (the trigger is not
  even queued: a re-assignment, a workflow step). Titles and numbers are almost never edited;
  ``reported_at`` is set only when an issue is reported (no code of geodata or etl updates it),
  listed so that a hand correction keeps the table right.
- ``gw_issue_search(q, before, cap)`` (SECURITY DEFINER, so it may read the table; the caller's
  scope settings untouched): at most ``4 × cap`` rows of ``issue_search`` reported before
  ``before`` whose keys hold every pair of ``q``'s (its one character, for a one-character text:
  ``gw_query_grams``) — by the text alone, whoever asks — then joined to ``issue`` by id, where
  the caller's row-level security applies (``issue`` has FORCE ROW LEVEL SECURITY: the definer is
  bound by the same policy and the caller's settings), rechecked with ``ILIKE`` on the number and
  the title, at most ``cap`` ids. Never a row outside the caller's scope. The pairs are a
  necessary condition of the match (PostgreSQL's ``ILIKE`` on a multibyte encoding compares
  ``lower()`` of both sides, as the grams do); the newline only adds pairs across the columns'
  border, which the recheck rejects.

  What a narrow scope may miss: the ``4 × cap`` rows are taken before the scope. For a text that
  more than ``4 × cap`` old issues hold (a frequent word: 垃圾), those rows are any of the city's,
  so a viewer whose scope holds few of them (a community leader, a grid worker) gets those of
  them that are theirs — possibly none, even though older matches of theirs exist. A rare text
  (fewer than ``4 × cap`` older holders: an old title's word, an old number or its part) is found
  whole in any scope. The search reads the last year from ``issue`` itself first, so this only
  concerns a frequent word with fewer matches in the scope's last year than the box shows.

The search (``geodata/workflow/text_search.py``: the map's box and the API's ``q``) says what is
bounded and how.

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

#: the columns of ``issue`` kept in ``issue_search``: the keys' text and ``reported_at``
KEPT = ("number", "title", "reported_at")

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
CREATE FUNCTION gw_issue_search_keys(number text, title text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT gw_text_grams(coalesce(number, '') || E'\n' || coalesce(title, ''), true) $$;
"""

TABLE = """
CREATE TABLE issue_search (
  issue_id bigint PRIMARY KEY REFERENCES issue (id) ON DELETE CASCADE,
  reported_at timestamptz NOT NULL,
  keys text[] NOT NULL);
SELECT set_config('gridwatch.grids', '*', true);
INSERT INTO issue_search SELECT id, reported_at, gw_issue_search_keys(number, title) FROM issue;
SELECT set_config('gridwatch.grids', '', true);
CREATE INDEX issue_search_keys ON issue_search USING gin (keys);
ANALYZE issue_search;
"""

_CHANGED = " OR ".join(f"old.{c} IS DISTINCT FROM new.{c}" for c in KEPT)
SYNC = f"""
CREATE FUNCTION gw_issue_search_insert() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO issue_search SELECT id, reported_at, gw_issue_search_keys(number, title) FROM new_rows;
  RETURN NULL;
END $$;
CREATE FUNCTION gw_issue_search_update() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO issue_search VALUES (new.id, new.reported_at, gw_issue_search_keys(new.number, new.title))
  ON CONFLICT (issue_id) DO UPDATE SET reported_at = excluded.reported_at, keys = excluded.keys;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION gw_issue_search_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION gw_issue_search_update() FROM PUBLIC;
CREATE TRIGGER issue_search_ins AFTER INSERT ON issue REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_issue_search_insert();
CREATE TRIGGER issue_search_upd AFTER UPDATE OF {', '.join(KEPT)} ON issue
  FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION gw_issue_search_update();
"""

#: planned for each call (EXECUTE): the query's grams are constants the planner estimates from the
#: index's statistics. ``q`` is literal: LIKE's wildcards and its escape are escaped.
SEARCH = r"""
CREATE FUNCTION gw_issue_search(q text, before timestamptz, cap integer) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  pat text := '%' || replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_') || '%';
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT i.id FROM (SELECT issue_id FROM issue_search WHERE keys @> %L::text[] AND reported_at < $1
                       LIMIT $2 * 4) k
     JOIN issue i ON i.id = k.issue_id WHERE i.number ILIKE $3 OR i.title ILIKE $3 LIMIT $2',
    gw_query_grams(q))
  USING before, cap, pat;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute(TABLE)
    op.execute(SYNC)
    op.execute(SEARCH)
    grant_app(APP_GRANTS, functions=("gw_query_grams(text)", "gw_issue_search(text, timestamptz, integer)"))


def downgrade() -> None:
    # IF EXISTS: a database migrated while this revision was an empty placeholder (commit e45159f),
    # or by its first version (scope tokens in the keys: gw_scope_tokens, gw_issue_search_sync, the
    # nine-argument gw_issue_search_keys), is brought to this one by a downgrade to 0021 and an upgrade
    op.execute("DROP TRIGGER IF EXISTS issue_search_ins ON issue; DROP TRIGGER IF EXISTS issue_search_upd ON issue")
    op.execute("DROP FUNCTION IF EXISTS gw_issue_search_insert(); DROP FUNCTION IF EXISTS gw_issue_search_update(); "
               "DROP FUNCTION IF EXISTS gw_issue_search_sync(); "
               "DROP FUNCTION IF EXISTS gw_issue_search(text, timestamptz, integer)")
    op.execute("DROP TABLE IF EXISTS issue_search")
    op.execute("DROP FUNCTION IF EXISTS gw_scope_tokens(); DROP FUNCTION IF EXISTS gw_issue_search_keys(text, text); "
               "DROP FUNCTION IF EXISTS gw_issue_search_keys(text, text, text, text, text, integer, integer, integer, integer); "
               "DROP FUNCTION IF EXISTS gw_query_grams(text); DROP FUNCTION IF EXISTS gw_text_grams(text, boolean)")
    # the first draft of this revision (an index on issue)
    op.execute("DROP INDEX IF EXISTS issue_search_grams; DROP FUNCTION IF EXISTS gw_issue_grams(text, text)")
