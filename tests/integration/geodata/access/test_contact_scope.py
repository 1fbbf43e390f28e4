"""Officials' phones under row-level security keyed by the scope (migration 0012): plain SQL as the
app role, the scope set as the server sets it (``rls.set_scope``). The yardstick is computed as
the superuser from ``grid_assignment``."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope


@pytest.fixture
def app(demo_app_engine: Engine) -> Iterator[Session]:
    with Session(demo_app_engine) as s:
        s.begin()
        yield s
        s.rollback()


def phones(s: Session) -> set[int]:
    return set(s.scalars(text("SELECT official_id FROM official_contact")))


def holders(db: Session, where: str, **params: str) -> set[int]:
    """Officials with a phone holding a role in grids matching ``where`` (superuser: no RLS)."""
    return set(db.scalars(text("SELECT DISTINCT a.official_id FROM grid_assignment a JOIN official_contact c "
                               f"ON c.official_id = a.official_id WHERE {where}"), params))


@pytest.fixture(scope="module")
def codes(demo_url) -> dict:
    from sqlalchemy import create_engine
    e = create_engine(demo_url)
    with e.connect() as c:
        comms = c.execute(text("SELECT code FROM grid WHERE level = 2 AND valid_to IS NULL ORDER BY code")).scalars().all()
        blocks = c.execute(text("SELECT code FROM grid WHERE level = 3 AND valid_to IS NULL ORDER BY code")).scalars().all()
        street = c.execute(text("SELECT code FROM grid WHERE level = 1 AND valid_to IS NULL")).scalar_one()
    e.dispose()
    return {"communities": comms, "blocks": blocks, "street": street}


def test_one_community_sees_only_its_own_chain(app, db, codes):
    comm = codes["communities"][0]
    rls.set_scope(app, Scope.grids(comm, personal_data=True))
    seen = phones(app)
    expected = holders(db, "left(a.grid_code, 12) = :c OR a.grid_code = :s", c=comm[:12], s=codes["street"])
    assert seen == expected
    total = db.execute(text("SELECT count(*) FROM official_contact")).scalar_one()
    assert 0 < len(seen) < total                  # the bug: every one of them
    other = codes["communities"][1]
    others_only = holders(db, "left(a.grid_code, 12) = :c", c=other[:12]) - expected
    assert others_only and not (others_only & seen)


def test_one_block_sees_its_block_community_and_street(app, db, codes):
    block = codes["blocks"][0]
    rls.set_scope(app, Scope.grids(block, personal_data=True))
    expected = holders(db, "a.grid_code IN (:b, :c, :s)", b=block, c=block[:12] + "00", s=codes["street"])
    assert phones(app) == expected
    sibling = next(b for b in codes["blocks"] if b[:12] == block[:12] and b != block)
    assert not (holders(db, "a.grid_code = :b", b=sibling) - expected) & phones(app)


def test_every_grid_and_own_phone(app, db, codes):
    rls.set_scope(app, Scope.everything(personal_data=True))
    assert len(phones(app)) == db.execute(text("SELECT count(*) FROM official_contact")).scalar_one()
    app.rollback()
    app.begin()
    # an official with no role anywhere in the scope still reads their own phone
    me = db.execute(text("SELECT official_id FROM official_contact ORDER BY official_id LIMIT 1")).scalar_one()
    rls.set_scope(app, Scope(roots=frozenset(), personal_data=True, official_id=me))
    assert phones(app) == {me}


def test_no_personal_data_no_phone(app, codes):
    rls.set_scope(app, Scope.grids(codes["communities"][0], personal_data=False))
    assert phones(app) == set()


@pytest.mark.parametrize("grids", ["", "%", "4101", "41010200500", "4101020050011", " 410102005001", "410102005001%"])
def test_malformed_scope_grants_no_phone(app, grids):
    for k, v in (("grids", grids), ("personal", "on")):
        app.execute(text("SELECT set_config(:k, :v, true)"), {"k": f"gridwatch.{k}", "v": v})
    assert phones(app) == set()
