"""The viewer's scope: which grids a viewer may see, and whether personal data is shown.

Every data query takes a Scope, so access control is enforced in one place. A scope lists root grid
codes; a root grants itself and all its descendants (a code's descendants share its prefix: 9 digits
for a street, 12 for a community, 14 for a block). On a row that carries its block's street and
community codes too (``issue``), the same grant is equality on one of them (:meth:`Scope.filter_codes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, false, or_, true

from geodata.codes import PREFIX_LEN, descendant_prefix


@dataclass(frozen=True)
class Scope:
    roots: frozenset[str] | None = None  # None: every grid
    personal_data: bool = False          # may see officials' phones and reporters
    official_id: int | None = None       # the viewer, when an official
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def everything(cls, personal_data: bool = True) -> Scope:
        return cls(roots=None, personal_data=personal_data)

    @classmethod
    def public(cls) -> Scope:
        """Anonymous viewer: every grid, no personal data."""
        return cls(roots=None, personal_data=False)

    @classmethod
    def grids(cls, *codes: str, personal_data: bool = False) -> Scope:
        return cls(roots=frozenset(codes), personal_data=personal_data)

    def prefixes(self) -> list[str] | None:
        if self.roots is None:
            return None
        return [descendant_prefix(c) for c in self.roots]

    def allows(self, code: str) -> bool:
        prefixes = self.prefixes()
        if prefixes is None:
            return True
        return any(code.startswith(p) for p in prefixes)

    def codes(self, level: int) -> list[str]:
        """The roots of one level (1 street, 2 community, 3 block) as whole codes (each root's
        descendant prefix padded with zeros, as ``gw_scope_codes`` reads them in PostgreSQL)."""
        return sorted({p.ljust(14, "0") for p in (self.prefixes() or []) if len(p) == PREFIX_LEN[level]})

    def filter_codes(self, street: ColumnElement, community: ColumnElement, block: ColumnElement
                     ) -> ColumnElement[bool]:
        """:meth:`filter` on a row holding a block's code and its community's and street's codes:
        equality (``= ANY``), which PostgreSQL may use as an index condition even under row-level
        security, where a ``LIKE`` is only checked after the policy."""
        if self.roots is None:
            return true()
        conds = [col.in_(codes) for level, col in ((1, street), (2, community), (3, block))
                 if (codes := self.codes(level))]
        return or_(*conds) if conds else false()

    def filter(self, column: ColumnElement) -> ColumnElement[bool]:
        """SQL condition restricting a grid-code column to this scope."""
        prefixes = self.prefixes()
        if prefixes is None:
            return true()
        if not prefixes:
            return false()
        return or_(*(column.like(p + "%") for p in prefixes))
