"""Synthetic but block-like boundaries for the 三官庙街道 demo (1 street, 14 communities, 59 blocks).

The geometry is drawn in a local metric frame (metres east/north of 113.63° E, 34.75° N) as a
street outline plus straight "roads". All lines are noded together once and polygonized, so every
face — block, community or street — carries every node on its boundary: siblings share edges
vertex for vertex and ``shapely.coverage_is_valid`` holds. The frame is then mapped to lon/lat by
one affine map applied to every coordinate (identical inputs give identical outputs, so shared
vertices stay shared). The geometry does not depend on the seed: grid codes are stable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import split

from geodata import codes

LON0, LAT0 = 113.63, 34.75
_PHI = math.radians(LAT0)
M_PER_DEG_LAT = 111132.954 - 559.822 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)

COUNTY = "410102"
STREET_NO = 5

# Street outline (metres, counter-clockwise): block-like, with a notch for a factory compound in
# the south-east, a set-back along the north-east and a diagonal road cutting the north-west corner.
STREET_OUTLINE = [(-980, -880), (620, -880), (620, -760), (1010, -760), (1010, 240), (940, 240),
                  (940, 860), (-420, 900), (-1000, 420), (-1000, -300)]

# Community-level roads: long straight lines (slightly skewed, like real streets), plus two short
# ones that split a column cell. Overshoots end as dangles outside the street and are dropped.
COMMUNITY_ROADS = [
    [(-520, -1050), (-545, 1050)],
    [(-40, -1050), (-20, 1050)],
    [(460, -1050), (480, 1050)],
    [(-1150, -300), (1150, -270)],
    [(-1150, 300), (1150, 330)],
    [(-600, 10), (40, -5)],      # splits the middle of column 2
    [(400, -20), (1150, -10)],   # splits the middle of column 4
]

#: Blocks per community, in the communities' coding order; sums to 59.
BLOCKS_PER_COMMUNITY = [4, 5, 4, 3, 4, 5, 4, 6, 4, 4, 3, 5, 4, 4]

COMMUNITY_NAMES = [  # in coding order (west→east, then north→south), matching the hotspots
    ("三官庙社区", "Sanguanmiao Community"), ("汝河路社区", "Ruhe Road Community"),
    ("伊河路社区", "Yihe Road Community"), ("西站村", "Xizhan Village"),
    ("化工路社区", "Huagong Road Community"), ("淮河路社区", "Huaihe Road Community"),
    ("华山路社区", "Huashan Road Community"), ("工人路社区", "Gongren Road Community"),
    ("桐柏路社区", "Tongbai Road Community"), ("棉纺社区", "Mianfang Community"),
    ("兴华社区", "Xinghua Community"), ("陇海西路社区", "Longhai West Road Community"),
    ("中原路社区", "Zhongyuan Road Community"), ("嵩山路社区", "Songshan Road Community"),
]

COMPOUND_NAMES = [("棉纺厂", "Cotton Mill"), ("电业局", "Power Bureau"), ("铁路", "Railway"),
                  ("化工厂", "Chemical Works"), ("市政", "Municipal"), ("纺织机械厂", "Textile Machinery"),
                  ("供销社", "Supply Co-op"), ("粮食局", "Grain Bureau"), ("电缆厂", "Cable Works"),
                  ("煤矿机械厂", "Mining Machinery"), ("邮电", "Post & Telecom"), ("水利", "Water Bureau")]
ESTATE_NAMES = [("锦华", "Jinhua"), ("绿都", "Lüdu"), ("和谐", "Hexie"), ("康宁", "Kangning"),
                ("嘉园", "Jiayuan"), ("阳光", "Yangguang"), ("华庭", "Huating"), ("金桂", "Jingui")]

#: Hotspots (metres): name, type, centre, sigma (m), weight; the block containing the centre is
#: named after it.
HOTSPOTS = [
    ("三官庙农贸市场", "market", (-150, 440), 70, 0.11),
    ("棉纺老家属院片区", "old_courtyard", (560, -430), 110, 0.12),
    ("陇海西路拆迁改造工地", "construction", (-720, -560), 90, 0.09),
    ("华山路小学门口", "school", (220, 160), 45, 0.06),
    ("桐柏路夜市", "night_market", (-330, -120), 75, 0.08),
    ("西站广场", "station", (-860, -120), 95, 0.06),
    ("区人民医院周边", "hospital", (720, 420), 60, 0.05),
    ("三官庙老旧小区", "old_courtyard", (-390, 640), 90, 0.07),
    ("华山路商业街", "commercial", (300, -130), 70, 0.05),
    ("西站村老村片区", "village", (-760, 160), 100, 0.06),
]
HOTSPOT_EN = ["Sanguanmiao Farmers' Market", "Mianfang Old Compounds",
              "Longhai West Road Redevelopment Site", "Huashan Road Primary School Gate",
              "Tongbai Road Night Market", "West Station Square", "District People's Hospital Area",
              "Sanguanmiao Old Estates", "Huashan Road Shopping Street", "Xizhan Old Village"]


def to_lonlat(geom):
    """Metric frame → lon/lat (one affine map, applied to every coordinate alike)."""
    return shapely.transform(geom, lambda xy: np.column_stack(
        (LON0 + xy[:, 0] / M_PER_DEG_LON, LAT0 + xy[:, 1] / M_PER_DEG_LAT)))


@dataclass
class GridShape:
    code: str
    level: int
    parent_code: str | None
    name: str
    name_en: str
    geom_m: Polygon          # metric frame
    geom: MultiPolygon = field(default=None)  # lon/lat  # type: ignore[assignment]
    hotspot: int | None = None


@dataclass
class DemoGeometry:
    street: GridShape
    communities: list[GridShape]
    blocks: list[GridShape]

    @property
    def all(self) -> list[GridShape]:
        return [self.street, *self.communities, *self.blocks]

    def blocks_of(self, community_code: str) -> list[GridShape]:
        return [b for b in self.blocks if b.parent_code == community_code]


def _cut_line(poly: Polygon, axis: str, frac: float) -> LineString:
    """A straight cut across ``poly`` at ``frac`` of its extent along ``axis`` (x: vertical line)."""
    minx, miny, maxx, maxy = poly.bounds
    if axis == "x":
        x = minx + (maxx - minx) * frac
        return LineString([(x, miny - 0.5), (x, maxy + 0.5)])
    y = miny + (maxy - miny) * frac
    return LineString([(minx - 0.5, y), (maxx + 0.5, y)])


def _pieces(poly: Polygon, line: LineString) -> list[Polygon]:
    return sorted((g for g in split(poly, line).geoms), key=lambda g: (g.centroid.x, g.centroid.y))


def _block_cuts(poly: Polygon, n: int, first_axis: str, rng: np.random.Generator) -> list[LineString]:
    """Cuts making ``n`` blocks: one cut into two strips, then cross cuts within each strip."""
    per_strip = {3: (1, 2), 4: (2, 2), 5: (2, 3), 6: (3, 3)}[n]
    f = float(rng.uniform(0.4, 0.6))
    first = _cut_line(poly, first_axis, f)
    lines = [first]
    other = "y" if first_axis == "x" else "x"
    strips = _pieces(poly, first)
    if len(strips) != 2:
        raise RuntimeError("demo geometry: a strip cut did not give two strips")
    for strip, k in zip(strips, per_strip):
        for j in range(1, k):
            frac = j / k + float(rng.uniform(-0.08, 0.08))
            lines.append(_cut_line(strip, other, frac))
    return lines


def _polygonize(segments) -> list[Polygon]:
    return [g for g in shapely.get_parts(shapely.polygonize(list(segments))) if not g.is_empty]


def build_geometry() -> DemoGeometry:
    rng = np.random.default_rng(410102005)
    outline = Polygon(STREET_OUTLINE)
    boundary = LineString(list(outline.exterior.coords))
    community_lines = [boundary] + [LineString(r) for r in COMMUNITY_ROADS]

    # communities (provisional, to place the block cuts)
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString(community_lines)))
    faces = [f for f in _polygonize(noded) if outline.contains(f.representative_point())]
    if len(faces) != 14:
        raise RuntimeError(f"demo geometry: {len(faces)} community faces, expected 14")
    order = codes.west_east_north_south_order([(f.centroid.x, f.centroid.y) for f in faces], 550.0)
    faces = [faces[i] for i in order]

    block_lines: list[LineString] = []
    for i, (face, n) in enumerate(zip(faces, BLOCKS_PER_COMMUNITY)):
        block_lines += _block_cuts(face, n, "y" if i % 2 == 0 else "x", rng)

    # one global noding of every line; every face below comes from these segments
    all_lines = community_lines + block_lines
    segs = shapely.get_parts(shapely.node(shapely.MultiLineString(all_lines)))
    comm_union = shapely.union_all(community_lines)
    mids = shapely.line_interpolate_point(segs, 0.5, normalized=True)
    on_comm = shapely.dwithin(mids, comm_union, 1e-6)
    on_street = shapely.dwithin(mids, boundary, 1e-6)

    street_faces = [f for f in _polygonize(segs[on_street]) if outline.contains(f.representative_point())]
    comm_faces = [f for f in _polygonize(segs[on_comm]) if outline.contains(f.representative_point())]
    block_faces = [f for f in _polygonize(segs) if outline.contains(f.representative_point())]
    if len(street_faces) != 1 or len(comm_faces) != 14:
        raise RuntimeError("demo geometry: unexpected street/community faces")
    # keep the community order fixed above
    comm_faces = [next(c for c in comm_faces if c.contains(f.representative_point())) for f in faces]

    street_code = codes.street_code(COUNTY, STREET_NO)
    street = GridShape(street_code, 1, None, "三官庙街道", "Sanguanmiao Subdistrict", street_faces[0])
    communities: list[GridShape] = []
    blocks: list[GridShape] = []
    hot_pts = [Point(h[2]) for h in HOTSPOTS]
    used_names: set[str] = set()
    compound_i = estate_i = 0
    for ci, (cface, target) in enumerate(zip(comm_faces, BLOCKS_PER_COMMUNITY), start=1):
        ccode = codes.community_code(street_code, ci)
        cname, cname_en = COMMUNITY_NAMES[ci - 1]
        communities.append(GridShape(ccode, 2, street_code, cname, cname_en, cface))
        mine = [b for b in block_faces if cface.contains(b.representative_point())]
        if len(mine) != target:
            raise RuntimeError(f"demo geometry: community {ci} has {len(mine)} blocks, expected {target}")
        border = codes.west_east_north_south_order([(b.centroid.x, b.centroid.y) for b in mine], 160.0)
        courtyard_no = 1
        for bi, idx in enumerate(border, start=1):
            bface = mine[idx]
            hot = next((h for h, p in enumerate(hot_pts) if bface.contains(p)), None)
            if hot is not None:
                stem, stem_en = HOTSPOTS[hot][0], HOTSPOT_EN[hot]
                base = cname.removesuffix("社区").removesuffix("村")
                if stem.startswith(cname):
                    stem = stem[len(cname):]
                elif stem.startswith(base) and stem[len(base)] not in "村路":
                    stem = stem[len(base):]
            elif (ci + bi) % 3 == 0:
                c_zh, c_en = COMPOUND_NAMES[compound_i % len(COMPOUND_NAMES)]
                compound_i += 1
                stem, stem_en = f"{c_zh}家属院", f"{c_en} Family Compound"
            elif (ci + bi) % 3 == 1:
                stem, stem_en = f"{courtyard_no}号院", f"Courtyard No. {courtyard_no}"
                courtyard_no += 1
            else:
                e_zh, e_en = ESTATE_NAMES[estate_i % len(ESTATE_NAMES)]
                estate_i += 1
                stem, stem_en = f"{e_zh}小区", f"{e_en} Estate"
            name = f"{cname}{stem}网格"
            if name in used_names:
                name = f"{cname}{stem}{bi}网格"
            used_names.add(name)
            blocks.append(GridShape(codes.block_code(ccode, bi), 3, ccode, name,
                                    f"{cname_en} {stem_en} Grid", bface, hotspot=hot))
    geo = DemoGeometry(street, communities, blocks)
    for g in geo.all:
        g.geom = MultiPolygon([to_lonlat(shapely.orient_polygons(g.geom_m))])
    return geo
