"""GB/T 30428.1 / CJ/T 213-style 14-digit grid codes.

county (6, GB/T 2260) + street (3, GB/T 10114) + community (3) + grid (2).
Level 1: ``CCCCCCSSS00000``; level 2: ``CCCCCCSSSMMM00`` (MMM ≠ 000); level 3: ``CCCCCCSSSMMMnn``
(nn ≠ 00). 中原区 is 410102.
"""
from __future__ import annotations

import re

CODE_RE = re.compile(r"^[0-9]{14}$")   # ASCII digits: \d would also take ١٢٣ and other scripts' digits


class CodeError(ValueError):
    pass


def level_of(code: str) -> int:
    """The level a well-formed code belongs to; raises CodeError when malformed."""
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise CodeError(f"网格编码须为14位数字：{code!r} / grid code must be 14 digits: {code!r}")
    if code[9:] == "00000":
        return 1
    if code[12:] == "00":
        return 2
    if code[9:12] == "000":
        raise CodeError(f"网格编码社区段不能为000：{code} / community part of {code} is 000")
    return 3


def is_valid(code: str, level: int | None = None) -> bool:
    try:
        return level is None or level_of(code) == level
    except CodeError:
        return False


#: Length of the prefix a code shares with all its descendants, per level (street, community, block).
PREFIX_LEN = {1: 9, 2: 12, 3: 14}


def descendant_prefix(code: str) -> str:
    """The prefix shared by ``code`` and every grid below it; raises CodeError when malformed."""
    return code[: PREFIX_LEN[level_of(code)]]


def parent_of(code: str) -> str | None:
    lvl = level_of(code)
    if lvl == 1:
        return None
    if lvl == 2:
        return code[:9] + "00000"
    return code[:12] + "00"


def lineage(code: str) -> list[str]:
    """THE grid ancestry: ``code``'s street, community and itself, street first (by the coding
    rule, :func:`parent_of`); raises CodeError when malformed."""
    out = [code]
    while (parent := parent_of(out[0])) is not None:
        out.insert(0, parent)
    return out


def street_code(county: str, street: int) -> str:
    _check_county(county)
    if not 1 <= street <= 999:
        raise CodeError(f"街道编号超出范围：{street} / street number out of range: {street}")
    return f"{county}{street:03d}00000"


def community_code(street_grid: str, n: int) -> str:
    if level_of(street_grid) != 1:
        raise CodeError(f"{street_grid} 不是街道网格编码 / is not a street grid code")
    if not 1 <= n <= 999:
        raise CodeError(f"社区编号超出范围：{n} / community number out of range: {n}")
    return f"{street_grid[:9]}{n:03d}00"


def block_code(community_grid: str, n: int) -> str:
    if level_of(community_grid) != 2:
        raise CodeError(f"{community_grid} 不是社区网格编码 / is not a community grid code")
    if not 1 <= n <= 99:
        raise CodeError(f"网格编号超出范围：{n} / block number out of range: {n}")
    return f"{community_grid[:12]}{n:02d}"


def _check_county(county: str) -> None:
    if not re.fullmatch(r"\d{6}", county or ""):
        raise CodeError(f"县级行政区划代码须为6位数字：{county!r} / county code must be 6 digits")


def west_east_north_south_order(centroids: list[tuple[float, float]], row_height: float) -> list[int]:
    """Indices ordered north→south in rows of ``row_height`` degrees, then west→east within a row
    (the conventional numbering of block grids)."""
    def key(i: int) -> tuple[int, float]:
        lon, lat = centroids[i]
        return (-int(lat // row_height), lon)

    return sorted(range(len(centroids)), key=key)
