"""Scope's two SQL forms of one rule: prefixes (``filter``, ``LIKE``) and codes by level
(``filter_codes``, equality — what issue reads use, leak-proof under row-level security)."""
from sqlalchemy import column
from sqlalchemy.dialects import postgresql

from geodata.access.scope import Scope

STREET, COMMUNITY, BLOCK = "41010200500000", "41010200500300", "41010200600102"


def _sql(expr) -> str:
    return str(expr.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def test_codes_by_level_are_the_roots_of_that_level():
    scope = Scope(roots=frozenset({STREET, COMMUNITY, BLOCK}))
    assert scope.codes(1) == [STREET] and scope.codes(2) == [COMMUNITY] and scope.codes(3) == [BLOCK]
    # each code's own descendant prefix, padded back: a code is found by equality on its level's column
    assert all(c.startswith(p) for c, p in zip([STREET, COMMUNITY, BLOCK], sorted(scope.prefixes(), key=len),
                                                strict=True))


def test_filter_codes_is_equality_on_each_level_column():
    street, community, block = column("street_code"), column("community_code"), column("grid_code")
    sql = _sql(Scope(roots=frozenset({COMMUNITY, BLOCK})).filter_codes(street, community, block))
    assert sql == f"community_code IN ('{COMMUNITY}') OR grid_code IN ('{BLOCK}')"
    assert "LIKE" not in sql
    assert _sql(Scope.everything().filter_codes(street, community, block)) == "true"
    assert _sql(Scope(roots=frozenset()).filter_codes(street, community, block)) == "false"
