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


# -- migration 0027: the policy on official_contact.reach, kept by the database ---------------------
def old_rule(db: Session, grids: str) -> set[int]:
    """0012/0019's test (an EXISTS over the assignments), computed as the superuser with the same
    setting: the yardstick for the reach column."""
    db.execute(text("SELECT set_config('gridwatch.grids', :g, true)"), {"g": grids})
    return set(db.scalars(text(
        "SELECT c.official_id FROM official_contact c WHERE EXISTS (SELECT 1 FROM grid_assignment a "
        "WHERE a.official_id = c.official_id AND ARRAY[left(a.grid_code, 9), left(a.grid_code, 12), a.grid_code::text] "
        "&& (gw_scope_prefixes() || gw_scope_ancestors()))")))


def seen_with(app: Session, grids: str) -> set[int]:
    rls.apply(app.connection(), Scope(roots=frozenset(), personal_data=True))
    app.execute(text("SELECT set_config('gridwatch.grids', :g, true)"), {"g": grids})
    return phones(app)


def test_reach_grants_what_the_assignments_did_for_every_kind_of_setting(app, db, codes):
    street, comm, block = codes["street"], codes["communities"][2], codes["blocks"][5]
    values = [
        comm[:12], block, street[:9], f"{comm[:12]},{codes['communities'][4][:12]}", f"{block},{street[:9]}",
        "", ",", "bogus", f"{comm[:12]},bogus", comm[:11], comm[:12] + "0", block + "9", f" {block}",
        block[:13], street, comm, f"{block},{block}", "4101020", "*x",
    ]
    for v in values:
        assert seen_with(app, v) == old_rule(db, v), v
    assert seen_with(app, comm[:12]) and not seen_with(app, "bogus")


def test_reach_follows_the_assignments(app, db, codes):
    """Adding, re-coding and removing an assignment (as the app role writes them, in a change set)
    moves the official's reach at once; ending one keeps it (0012's test counts every period)."""
    street, comms = codes["street"], codes["communities"]
    far = comms[-1]
    # an official holding nothing in the far community nor its street level
    oid = db.execute(text(
        "SELECT c.official_id FROM official_contact c WHERE NOT EXISTS (SELECT 1 FROM grid_assignment a "
        "WHERE a.official_id = c.official_id AND (left(a.grid_code, 12) = :f OR a.grid_code = :s)) "
        "ORDER BY 1 LIMIT 1"), {"f": far[:12], "s": street}).scalar_one()

    def reach() -> set[str]:
        return set(db.execute(text("SELECT reach FROM official_contact WHERE official_id = :o"), {"o": oid}).scalar_one())

    def visible_to_far() -> bool:
        return oid in old_rule(db, far[:12])

    assert far not in reach() and not visible_to_far()
    new = db.execute(text("INSERT INTO grid_assignment (official_id, grid_code, role, title, rank, valid_from) "
                          "VALUES (:o, :g, 'direct_responsible', '测试', 9, now()) RETURNING id"),
                     {"o": oid, "g": far}).scalar_one()
    assert {far, far[:12], far[:9]} <= reach() and visible_to_far()
    db.execute(text("UPDATE grid_assignment SET valid_to = now() + interval '1 day' WHERE id = :i"), {"i": new})
    assert far in reach()
    other = comms[-2]
    db.execute(text("UPDATE grid_assignment SET grid_code = :g WHERE id = :i"), {"g": other, "i": new})
    assert other in reach() and far not in reach()
    db.execute(text("DELETE FROM grid_assignment WHERE id = :i"), {"i": new})
    assert other not in reach()
    # and the row a contact gets when it is added
    assert set(db.execute(text("SELECT gw_official_reach(:o)"), {"o": oid}).scalar_one()) == reach()


def test_the_app_role_writing_assignments_moves_reach_and_keeps_its_scope(app, codes):
    """A planner's change set writes ``grid_assignment`` as the app role, which may only read
    ``official_contact``: the sync runs as the owner, widens its scope for its one UPDATE and puts
    the caller's back."""
    comm, far = codes["communities"][0], codes["communities"][-1]
    rls.set_scope(app, Scope.grids(comm, personal_data=False))
    oid = app.execute(text("SELECT min(id) FROM official")).scalar_one()
    app.execute(text("INSERT INTO grid_assignment (official_id, grid_code, role, title, rank, valid_from) "
                     "VALUES (:o, :g, 'direct_responsible', '测试', 9, now())"), {"o": oid, "g": far})
    settings = app.execute(text("SELECT current_setting('gridwatch.grids'), current_setting('gridwatch.personal')")).one()
    assert tuple(settings) == (comm[:12], "off")
    rls.apply(app.connection(), Scope.everything(personal_data=True))
    assert far in app.execute(text("SELECT reach FROM official_contact WHERE official_id = :o"), {"o": oid}).scalar_one()
