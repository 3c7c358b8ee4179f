"""Terrain heights and ray casting against geometry anyone can compute."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant.config import CliffConfig, CraterConfig, TerrainConfig
from plant.moon import MEAN_RADIUS_M, SiteFrame
from plant.terrain import Terrain

SITE = SiteFrame(10.0, 20.0)


def point(downrange_m: float, crossrange_m: float, radius_m: float) -> np.ndarray:
    return SITE.surface_direction(downrange_m, crossrange_m) * radius_m


def sphere_hit(o: np.ndarray, d: np.ndarray, radius_m: float) -> float:
    """Independent ray-sphere intersection (first, from outside)."""
    b = float(o @ d)
    c = float(o @ o) - radius_m ** 2
    return -b - math.sqrt(b * b - c)


def flat(mean_height_m: float = 0.0, dummy_crater: bool = False) -> Terrain:
    """Flat terrain; with a zero-size crater at the site the ray marcher is exercised."""
    craters = [CraterConfig(radius_m=20000.0, depth_m=0.0, rim_height_m=0.0)] if dummy_crater else []
    return Terrain(TerrainConfig(mean_height_m=mean_height_m, craters=craters), SITE)


@pytest.mark.parametrize("dummy", [False, True])
@pytest.mark.parametrize("h", [2.0, 100.0, 1000.0, 14000.0])
def test_flat_vertical_range_is_altitude(h: float, dummy: bool) -> None:
    terr = flat(mean_height_m=250.0, dummy_crater=dummy)
    r = SITE.up * (MEAN_RADIUS_M + 250.0 + h)
    assert terr.altitude_m(r) == pytest.approx(h, abs=1e-6)
    assert terr.ray_range_m(r, -SITE.up, 15000.0) == pytest.approx(h, abs=0.01)


@pytest.mark.parametrize("dummy", [False, True])
@pytest.mark.parametrize("theta_deg", [5.0, 20.0, 45.0])
def test_flat_slant_range(theta_deg: float, dummy: bool) -> None:
    h = 1000.0
    terr = flat(dummy_crater=dummy)
    r = SITE.up * (MEAN_RADIUS_M + h)
    th = math.radians(theta_deg)
    d = -math.cos(th) * SITE.up + math.sin(th) * SITE.east
    got = terr.ray_range_m(r, d, 15000.0)
    # Exact sphere answer to 1 cm; the flat-ground h/cos(theta) within the curvature drop,
    # (h tan(theta))^2 / (2 R) / cos(theta) (0.29 m at 45 degrees).
    assert got == pytest.approx(sphere_hit(r, d, MEAN_RADIUS_M), abs=0.01)
    x = h * math.tan(th)
    curvature = x * x / (2.0 * MEAN_RADIUS_M) / math.cos(th)
    assert got - h / math.cos(th) == pytest.approx(curvature, rel=0.05, abs=0.01)


def test_crater_profile_heights() -> None:
    R, D, H = 800.0, 150.0, 30.0
    terr = Terrain(TerrainConfig(mean_height_m=-50.0, craters=[
        CraterConfig(downrange_m=2000.0, crossrange_m=-1000.0, radius_m=R, depth_m=D, rim_height_m=H)]),
        SITE)

    def h_at(ds: float) -> float:        # ds: downrange offset from the crater centre
        return terr.height_m(point(2000.0 + ds, -1000.0, MEAN_RADIUS_M + 3000.0))

    assert h_at(0.0) == pytest.approx(-50.0 - D, abs=1e-3)
    assert h_at(R) == pytest.approx(-50.0 + H, abs=1e-3)
    assert h_at(-R) == pytest.approx(-50.0 + H, abs=1e-3)
    assert h_at(R / 2) == pytest.approx(-50.0 - D + (D + H) / 4, abs=1e-3)   # parabolic bowl
    # Continuous across the rim, falling outside it, zero beyond 5 R.
    assert h_at(R - 0.01) == pytest.approx(h_at(R + 0.01), abs=0.02)
    assert -50.0 < h_at(2 * R) < -50.0 + H / 8 + 1e-9
    assert h_at(5 * R + 1.0) == pytest.approx(-50.0, abs=1e-9)
    assert h_at(20 * R) == pytest.approx(-50.0, abs=1e-9)
    # Height is along the radial: it does not depend on the point's altitude.
    assert terr.height_m(point(2000.0, -1000.0, MEAN_RADIUS_M + 10.0)) == pytest.approx(-50.0 - D, abs=1e-3)
    assert terr.altitude_m(point(2000.0, -1000.0, MEAN_RADIUS_M + 10.0)) == pytest.approx(10.0 + 50.0 + D, abs=1e-3)


def test_site_radius() -> None:
    terr = Terrain(TerrainConfig(mean_height_m=12.0, craters=[
        CraterConfig(radius_m=100.0, depth_m=20.0, rim_height_m=3.0)]), SITE)
    assert terr.site_radius_m == pytest.approx(MEAN_RADIUS_M + 12.0 - 20.0, abs=1e-6)
    # A crater far away leaves the site at the mean height.
    terr = Terrain(TerrainConfig(mean_height_m=12.0, craters=[
        {"downrange_m": 5000.0, "radius_m": 500.0, "depth_m": 100.0, "rim_height_m": 20.0}]), SITE)
    assert terr.site_radius_m == pytest.approx(MEAN_RADIUS_M + 12.0, abs=1e-9)


def deep_crater(far_crater: bool = False) -> Terrain:
    """A km-scale crater (HAKUTO-R-like rim cliff): R 5 km, 3 km deep, 300 m rim.

    ``far_crater`` adds a big crater 600 km away: it changes nothing here but raises the
    bounding sphere of the terrain, so rays near the rim must be marched.
    """
    craters = [CraterConfig(downrange_m=0.0, radius_m=5000.0, depth_m=3000.0, rim_height_m=300.0)]
    if far_crater:
        craters.append(CraterConfig(downrange_m=-600000.0, radius_m=50000.0, depth_m=2000.0,
                                    rim_height_m=800.0))
    return Terrain(TerrainConfig(craters=craters), SITE)


def test_vertical_rays_over_a_deep_crater() -> None:
    terr = deep_crater()
    for ds in (0.0, 2500.0, 4990.0, 5000.0, 5010.0, 8000.0, 30000.0):
        r = point(ds, 0.0, MEAN_RADIUS_M + 4000.0)
        up = r / np.linalg.norm(r)
        assert terr.ray_range_m(r, -up, 15000.0) == pytest.approx(terr.altitude_m(r), abs=0.01)
    # Across the rim the range jumps by kilometres within tens of metres.
    r_in, r_rim = point(1000.0, 0.0, MEAN_RADIUS_M + 4000.0), point(5000.0, 0.0, MEAN_RADIUS_M + 4000.0)
    jump = terr.ray_range_m(r_in, -r_in / np.linalg.norm(r_in), 15000.0) \
        - terr.ray_range_m(r_rim, -r_rim / np.linalg.norm(r_rim), 15000.0)
    assert jump == pytest.approx(3000.0 + 300.0 - 3300.0 * 0.04, abs=0.05)


def test_slant_ray_hits_rim_but_not_beside_it() -> None:
    """From the crater floor side, a shallow ray aimed at the far rim stops on the rim; the
    same ray moved sideways past the crater reaches the mean surface much further on."""
    terr = deep_crater()
    h = 200.0                                   # metres above the mean surface
    for cross, expect_rim in ((0.0, True), (40000.0, False)):
        r = point(-1000.0, cross, MEAN_RADIUS_M + h)
        up = r / np.linalg.norm(r)
        east = np.cross(SITE.north, up)
        east /= np.linalg.norm(east)
        d = math.cos(math.radians(2.0)) * east - math.sin(math.radians(2.0)) * up
        got = terr.ray_range_m(r, d, 15000.0)
        flat_hit = sphere_hit(r, d, MEAN_RADIUS_M)
        if expect_rim:
            # The rim (300 m high at 6 km) stands above the ray: hit before the crest, on
            # the inner wall, well short of where the mean surface would be.
            assert got is not None and got < flat_hit - 100.0
            p = r + got * d
            assert terr.altitude_m(p) == pytest.approx(0.0, abs=0.01)
            assert 4000.0 < SITE.ground_coordinates(p)[0] < 5000.0
        else:
            assert got == pytest.approx(flat_hit, abs=0.01)


@pytest.mark.parametrize("far", [False, True])
@pytest.mark.parametrize("delta_m, hits", [(0.3, False), (0.05, False), (-0.05, True), (-0.3, True)])
def test_ray_grazing_rim_crest(delta_m: float, hits: bool, far: bool) -> None:
    """A ray tangent to the rim crest: above it misses, a few centimetres below it hits."""
    terr = deep_crater(far)
    crest = point(5000.0, 0.0, MEAN_RADIUS_M + 300.0)
    up = crest / np.linalg.norm(crest)
    east = np.cross(SITE.north, up)
    east /= np.linalg.norm(east)
    origin = crest + delta_m * up - 3000.0 * east
    got = terr.ray_range_m(origin, east, 6000.0)
    if hits:
        # Inner wall slope at the crest is 2 (D + H) / R = 1.32: the ray enters the wall
        # -delta / 1.32 before the crest.
        assert got == pytest.approx(3000.0 + delta_m / 1.32, abs=0.02)
        assert terr.altitude_m(origin + got * east) == pytest.approx(0.0, abs=0.01)
    else:
        assert got is None


def test_misses_and_max_range() -> None:
    terr = deep_crater()
    r = point(30000.0, 0.0, MEAN_RADIUS_M + 1000.0)      # beyond the crater's 5 R
    up = r / np.linalg.norm(r)
    assert terr.ray_range_m(r, up, 1e6) is None                     # pointing up
    assert terr.ray_range_m(r, -up, 999.0) is None                  # beyond max range
    assert terr.ray_range_m(r, -up, 1001.0) == pytest.approx(1000.0, abs=0.01)
    assert terr.ray_range_m(r - 1001.0 * up, -up, 100.0) == 0.0     # origin under ground
    # Horizontal at 1 km: the horizon is 59 km away but the ray rises above the surface.
    east = np.cross(SITE.north, up)
    assert terr.ray_range_m(r, east / np.linalg.norm(east), 1e6) is None


def brute_first_hit(terr: Terrain, o: np.ndarray, d: np.ndarray, max_range: float,
                    step: float) -> float | None:
    """First sample along the ray at or below the surface (dense sampling)."""
    for t in np.arange(0.0, max_range, step):
        if terr.altitude_m(o + t * d) <= 0.0:
            return float(t)
    return None


def test_random_rays_match_dense_sampling() -> None:
    craters = [CraterConfig(downrange_m=-3000.0, radius_m=2500.0, depth_m=900.0, rim_height_m=150.0),
               CraterConfig(downrange_m=300.0, crossrange_m=100.0, radius_m=40.0, depth_m=8.0,
                            rim_height_m=2.0),
               CraterConfig(downrange_m=-600.0, crossrange_m=-300.0, radius_m=400.0, depth_m=60.0,
                            rim_height_m=25.0)]
    terr = Terrain(TerrainConfig(craters=craters), SITE)
    rng = np.random.default_rng(7)
    for _ in range(16):
        r = point(rng.uniform(-7000.0, 1000.0), rng.uniform(-500.0, 500.0),
                  MEAN_RADIUS_M + rng.uniform(50.0, 1500.0))
        up = r / np.linalg.norm(r)
        east = np.cross(SITE.north, up)
        ang = math.radians(rng.uniform(0.0, 89.0))      # vertical to grazing
        d = -math.cos(ang) * up + math.sin(ang) * east / np.linalg.norm(east)
        got = terr.ray_range_m(r, d, 4000.0)
        ref = brute_first_hit(terr, r, d, 4000.0, 0.5)
        assert (got is None) == (ref is None)
        if ref is not None:
            assert ref - 0.5 - 0.01 <= got <= ref + 0.01
            assert abs(terr.altitude_m(r + got * d)) < 0.01


# ---------------------------------------------------------------- cliffs


def cliff_terrain(high_side: str = "uprange", height: float = 3000.0, width: float = 100.0,
                  at: float = -8000.0, half: float = 1e6, craters: list | None = None,
                  mean: float = 0.0) -> Terrain:
    return Terrain(TerrainConfig(mean_height_m=mean, craters=craters or [], cliffs=[
        CliffConfig(downrange_m=at, height_m=height, high_side=high_side, width_m=width,
                    crossrange_half_width_m=half)]), SITE)


def ground_h(terr: Terrain, downrange: float, crossrange: float = 0.0) -> float:
    return terr.height_m(point(downrange, crossrange, MEAN_RADIUS_M + 1000.0))


def local_axes(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    up = r / np.linalg.norm(r)
    east = np.cross(SITE.north, up)
    east /= np.linalg.norm(east)
    return up, east, np.cross(up, east)


@pytest.mark.parametrize("side", ["uprange", "downrange"])
def test_cliff_heights(side: str) -> None:
    terr = cliff_terrain(side, height=3000.0, width=100.0, at=-8000.0, mean=-40.0)
    high, low = (-1.0, 1.0) if side == "uprange" else (1.0, -1.0)
    for far in (50.1, 80.0, 1000.0, 300000.0):
        assert ground_h(terr, -8000.0 + high * far) == pytest.approx(-40.0 + 3000.0, abs=1e-6)
        assert ground_h(terr, -8000.0 + low * far) == pytest.approx(-40.0, abs=1e-6)
    assert ground_h(terr, -8000.0) == pytest.approx(-40.0 + 1500.0, abs=1e-6)   # mid-line
    # Cosine ramp: a quarter of the way up at a quarter width... (1 - cos(pi/4)) / 2.
    q = (1.0 - math.cos(math.pi / 4.0)) / 2.0
    assert ground_h(terr, -8000.0 - high * 25.0) == pytest.approx(-40.0 + 3000.0 * q, abs=1e-6)
    # Continuous: across the band no sample-to-sample jump exceeds the steepest slope
    # (pi H / 2w = 47.1) times the 0.5 m spacing, and the slope is continuous.
    xs = np.arange(-8100.0, -7900.0, 0.5)
    hs = np.array([ground_h(terr, x) for x in xs])
    assert np.max(np.abs(np.diff(hs))) <= math.pi * 3000.0 / 200.0 * 0.5 * 1.001
    assert np.max(np.abs(np.diff(hs, 2))) < 1.0
    # The landing site, 8 km on, is on the low side (untouched) or on the high side.
    site_h = -40.0 + (3000.0 if side == "downrange" else 0.0)
    assert terr.site_radius_m == pytest.approx(MEAN_RADIUS_M + site_h, abs=1e-9)


def test_cliff_at_the_target_and_site_on_the_high_side() -> None:
    # A downrange-high cliff before the target puts the site on the plateau.
    terr = cliff_terrain("downrange", height=700.0, at=-3000.0)
    assert terr.site_radius_m == pytest.approx(MEAN_RADIUS_M + 700.0, abs=1e-9)
    assert cliff_terrain("uprange", height=700.0, at=0.0).site_radius_m == \
        pytest.approx(MEAN_RADIUS_M + 350.0, abs=1e-6)


def test_cliff_ends_across_the_track_and_adds_to_craters() -> None:
    terr = cliff_terrain("uprange", height=1000.0, width=200.0, at=-8000.0, half=2000.0,
                         craters=[CraterConfig(downrange_m=-12000.0, radius_m=500.0,
                                               depth_m=100.0, rim_height_m=20.0)])
    assert ground_h(terr, -10000.0, 1999.0) == pytest.approx(1000.0, abs=1e-6)
    assert ground_h(terr, -10000.0, -2100.0) == pytest.approx(500.0, abs=1e-6)   # mid-taper
    assert ground_h(terr, -10000.0, 2200.5) == pytest.approx(0.0, abs=1e-9)
    # The crater sits on the plateau: its floor is 100 m below the plateau top.
    assert ground_h(terr, -12000.0) == pytest.approx(1000.0 - 100.0, abs=1e-6)


def vertical_range(terr: Terrain, downrange: float, altitude_above_mean: float) -> float:
    r = point(downrange, 0.0, MEAN_RADIUS_M + altitude_above_mean)
    return terr.ray_range_m(r, -r / np.linalg.norm(r), 15000.0)


@pytest.mark.parametrize("height", [500.0, 3000.0, 5000.0])
@pytest.mark.parametrize("width", [50.0, 500.0])
def test_vertical_range_jumps_by_the_cliff_height(height: float, width: float) -> None:
    """ispace Mission 1: over the plateau the range is the height lower than over the floor."""
    terr = cliff_terrain("uprange", height=height, width=width, at=-8000.0)
    over_plateau = vertical_range(terr, -8000.0 - width, 9000.0)
    over_floor = vertical_range(terr, -8000.0 + width, 9000.0)
    assert over_plateau == pytest.approx(9000.0 - height, abs=0.01)
    assert over_floor == pytest.approx(9000.0, abs=0.01)
    assert over_floor - over_plateau == pytest.approx(height, abs=0.01)
    assert vertical_range(terr, -8000.0, 9000.0) == pytest.approx(9000.0 - height / 2, abs=0.01)


@pytest.mark.parametrize("side", ["uprange", "downrange"])
@pytest.mark.parametrize("from_dr, alt, elev_deg, lands_on", [
    (3000.0, 1500.0, 0.0, "face"),      # from the floor side, level, 1.5 km up: the face
    (3000.0, 1500.0, -5.0, "face"),
    (3000.0, 1500.0, -20.0, "face"),    # drops 1.09 km on the way: low on the face
    (3000.0, 1500.0, -45.0, "floor"),   # reaches the floor 1.5 km short of the cliff
    (-300.0, 4000.0, -20.0, "floor"),   # from the plateau side, 1 km over the top: over the edge
    (-3000.0, 4000.0, -20.0, "top"),    # further back: the top, 250 m short of the edge
    (-300.0, 4000.0, 0.0, None),        # level over the top: rises away from the ground
])
def test_slant_ray_across_a_cliff_matches_dense_sampling(
        side: str, from_dr: float, alt: float, elev_deg: float, lands_on: str | None) -> None:
    """A ray flying across a 3 km cliff 60 m wide (steepest 89.3 deg) towards the other side.
    ``from_dr``: start, metres from the mid-line towards the low (+) or high (-) side."""
    sign = -1.0 if side == "uprange" else 1.0      # direction of the high side, downrange
    terr = cliff_terrain(side, height=3000.0, width=60.0, at=-8000.0)
    r = point(-8000.0 - sign * from_dr, 0.0, MEAN_RADIUS_M + alt)
    up, east, _ = local_axes(r)
    heading = sign if from_dr > 0.0 else -sign     # towards the mid-line
    el = math.radians(elev_deg)
    d = math.cos(el) * heading * east + math.sin(el) * up
    got = terr.ray_range_m(r, d, 15000.0)
    ref = brute_first_hit(terr, r, d, 15000.0, 0.25)
    assert (got is None) == (ref is None) == (lands_on is None)
    if lands_on is None:
        return
    assert ref - 0.25 - 0.01 <= got <= ref + 0.01
    hit = r + got * d
    assert abs(terr.altitude_m(hit)) < 0.01
    x = sign * (SITE.ground_coordinates(hit)[0] + 8000.0)      # metres into the high side
    h = terr.height_m(hit)
    if lands_on == "face":
        assert -30.0 <= x <= 30.0 and 10.0 < h < 2990.0
    elif lands_on == "top":
        assert x > 30.0 and h == pytest.approx(3000.0, abs=1e-6)
    else:
        assert x < -30.0 and h == pytest.approx(0.0, abs=1e-6)


def test_random_rays_over_cliffs_and_craters_match_dense_sampling() -> None:
    craters = [CraterConfig(downrange_m=-3000.0, radius_m=1500.0, depth_m=600.0, rim_height_m=100.0),
               CraterConfig(downrange_m=-6500.0, crossrange_m=700.0, radius_m=300.0, depth_m=60.0,
                            rim_height_m=20.0)]
    terr = Terrain(TerrainConfig(mean_height_m=-200.0, craters=craters, cliffs=[
        CliffConfig(downrange_m=-5000.0, height_m=2500.0, high_side="uprange", width_m=40.0,
                    crossrange_half_width_m=1500.0),
        {"downrange_m": -1500.0, "height_m": 800.0, "high_side": "downrange", "width_m": 300.0,
         "crossrange_half_width_m": 2500.0}]), SITE)
    rng = np.random.default_rng(11)
    checked = 0
    while checked < 24:
        r = point(rng.uniform(-8000.0, 1000.0), rng.uniform(-3000.0, 3000.0),
                  MEAN_RADIUS_M + rng.uniform(-100.0, 4000.0))
        if terr.altitude_m(r) < 1.0:
            continue
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        up = r / np.linalg.norm(r)
        if d @ up > 0.0:
            d -= 2.0 * (d @ up) * up                        # any direction below horizontal
        got = terr.ray_range_m(r, d, 5000.0)
        ref = brute_first_hit(terr, r, d, 5000.0, 0.5)
        assert (got is None) == (ref is None)
        if ref is not None:
            assert ref - 0.5 - 0.01 <= got <= ref + 0.01
            assert abs(terr.altitude_m(r + got * d)) < 0.01
        checked += 1


def test_ray_along_the_cliff_band_is_not_slowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ray parallel to a near-vertical face (width 1 m) does not crawl along it: the
    downrange coordinate of a ray moving north does not change."""
    terr = cliff_terrain("uprange", height=5000.0, width=1.0, at=-8000.0, half=3000.0)
    calls = []
    margin = Terrain._margin
    monkeypatch.setattr(Terrain, "_margin", lambda self, *a: calls.append(1) or margin(self, *a))
    r = point(-8000.0, -2000.0, MEAN_RADIUS_M + 2600.0)      # 100 m over the face's middle
    _, _, north = local_axes(r)
    assert terr.ray_range_m(r, north, 8000.0) is None        # passes the cliff's end
    assert len(calls) < 50


def test_cliff_ray_cast_speed() -> None:
    """Altimeter-like casts over a 5 km, 50 m wide cliff and craters: well under 1 ms each."""
    import time
    terr = cliff_terrain("uprange", height=5000.0, width=50.0, at=-8000.0, craters=[
        CraterConfig(downrange_m=-3000.0, radius_m=2000.0, depth_m=500.0, rim_height_m=80.0)])
    rng = np.random.default_rng(3)
    rays = []
    for _ in range(300):
        r = point(rng.uniform(-16000.0, 0.0), rng.uniform(-300.0, 300.0),
                  MEAN_RADIUS_M + rng.uniform(5200.0, 15000.0))
        up, east, _ = local_axes(r)
        ang = math.radians(rng.uniform(0.0, 90.0))
        rays.append((r, -math.cos(ang) * up + math.sin(ang) * rng.choice([-1.0, 1.0]) * east))
    t0 = time.perf_counter()
    hits = sum(terr.ray_range_m(r, d, 15000.0) is not None for r, d in rays)
    elapsed = time.perf_counter() - t0
    assert hits > 100
    assert elapsed < 0.5, f"300 casts took {elapsed:.3f} s"


@pytest.mark.parametrize("table, key, words", [
    ('high_side = "up"', "terrain.cliffs[0].high_side", "is not one of uprange, downrange"),
    ("width_m = 0.0", "terrain.cliffs[0].width_m", "width_m = 0 is out of range (1 .. 1e5)"),
    ("height_m = -10.0", "terrain.cliffs[0].height_m", "height_m = -10 is out of range"),
    ("heigth_m = 10.0", "terrain.cliffs[0].heigth_m", 'unknown key "heigth_m" (did you mean "height_m"?)'),
    ('crossrange_half_width_m = "far"', "terrain.cliffs[0].crossrange_half_width_m", "is a string; expected a number"),
])
def test_bad_cliff_tables_are_rejected(tmp_path, table: str, key: str, words: str) -> None:
    from hil.errors import ScenarioError
    from hil.scenario import load_scenario
    path = tmp_path / "x.toml"
    path.write_text(f"[[terrain.cliffs]]\ndownrange_m = -8000.0\n{table}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    assert info.value.key == key
    assert "[[terrain.cliffs]] #1:" in str(info.value) and words in str(info.value)


def test_cliff_tables_load_and_round_trip(tmp_path) -> None:
    from hil.errors import ScenarioError
    from hil.scenario import load_scenario, scenario_from_dict, scenario_to_dict
    path = tmp_path / "x.toml"
    path.write_text('[[terrain.cliffs]]\ndownrange_m = -8000\nheight_m = 3000\n'
                    'high_side = "uprange"\nwidth_m = 100\n', encoding="utf-8")
    cfg = load_scenario(str(path))
    assert cfg.terrain.cliffs == [CliffConfig(-8000.0, 3000.0, "uprange", 100.0, 1e6)]
    assert scenario_from_dict(scenario_to_dict(cfg)).terrain.cliffs == cfg.terrain.cliffs
    with pytest.raises(ScenarioError, match="expected a list of"):
        scenario_from_dict({"terrain": {"cliffs": {"height_m": 1.0}}})


# ---------------------------------------------------------------- site slope and normals


def sloped(slope_deg: float = 12.0, azimuth_deg: float = 90.0, radius_m: float = 200.0,
           craters: list | None = None, cliffs: list | None = None) -> Terrain:
    return Terrain(TerrainConfig(craters=craters or [], cliffs=cliffs or [],
                                 site_slope_deg=slope_deg, site_slope_azimuth_deg=azimuth_deg,
                                 site_slope_radius_m=radius_m), SITE)


@pytest.mark.parametrize("azimuth_deg", [90.0, 0.0, 225.0])
def test_site_slope_is_a_tilted_plane_that_blends_out(azimuth_deg: float) -> None:
    terr = sloped(12.0, azimuth_deg)
    t = math.tan(math.radians(12.0))
    az = math.radians(azimuth_deg)
    down = (math.sin(az), math.cos(az))              # (downrange, crossrange) of downhill
    for dist in (-150.0, -40.0, 0.0, 70.0, 190.0):
        a, c = dist * down[0], dist * down[1]
        assert ground_h(terr, a, c) == pytest.approx(-t * dist, abs=1e-3)
        # Across the slope the ground is level.
        assert ground_h(terr, a - 30.0 * down[1], c + 30.0 * down[0]) == \
            pytest.approx(-t * dist, abs=1e-3)
    assert terr.site_radius_m == pytest.approx(MEAN_RADIUS_M, abs=1e-9)
    assert ground_h(terr, 401.0 * down[0], 401.0 * down[1]) == 0.0     # beyond 2 R: gone
    # The normal leans 12 degrees downhill at the site.
    r = SITE.up * MEAN_RADIUS_M
    assert terr.slope_deg(r) == pytest.approx(12.0, abs=1e-6)
    g, n, above = terr.ground_plane(r + 5.0 * SITE.up)
    downhill = down[0] * SITE.east + down[1] * SITE.north
    assert float(np.dot(n, downhill)) == pytest.approx(math.sin(math.radians(12.0)), abs=1e-9)
    assert above == pytest.approx(5.0, abs=1e-9)
    assert np.linalg.norm(np.array(g) - r) < 1e-6


def test_gradient_matches_finite_differences_on_craters_cliffs_and_slope() -> None:
    terr = sloped(15.0, 120.0, 250.0, craters=[
        CraterConfig(downrange_m=300.0, crossrange_m=-200.0, radius_m=150.0, depth_m=30.0,
                     rim_height_m=8.0)], cliffs=[
        CliffConfig(downrange_m=-600.0, height_m=50.0, high_side="uprange", width_m=100.0,
                    crossrange_half_width_m=300.0)])
    rng = np.random.default_rng(5)
    worst = 0.0
    for _ in range(400):
        u = SITE.surface_direction(rng.uniform(-900.0, 900.0), rng.uniform(-500.0, 500.0))
        h, grad = terr.height_gradient_dir(*u)
        assert h == pytest.approx(terr.height_m(u * MEAN_RADIUS_M), abs=1e-9)
        assert abs(float(np.dot(grad, u))) < 1e-9             # tangent to the sphere
        e1 = np.cross(SITE.north, u)
        e1 /= np.linalg.norm(e1)
        for e in (e1, np.cross(u, e1)):
            def at(ds):
                v = u + e * ds / MEAN_RADIUS_M
                return terr.height_m(v / np.linalg.norm(v) * MEAN_RADIUS_M)
            numeric = (at(1e-3) - at(-1e-3)) / 2e-3
            worst = max(worst, abs(numeric - float(np.dot(grad, e))))
    assert worst < 1e-5


def test_crater_wall_slope_is_the_profile_derivative() -> None:
    # Bowl: h = -D + (D + H) (s/R)^2 -> slope 2 (D + H) s / R^2 at s; rim flank falls off.
    terr = Terrain(TerrainConfig(craters=[CraterConfig(radius_m=500.0, depth_m=100.0,
                                                       rim_height_m=20.0)]), SITE)
    for s, expect in ((250.0, 2 * 120.0 * 250.0 / 500.0 ** 2), (499.0, 2 * 120.0 * 499.0 / 500.0 ** 2)):
        r = point(s, 0.0, MEAN_RADIUS_M)
        assert terr.slope_deg(r) == pytest.approx(math.degrees(math.atan(expect)), abs=0.01)


def test_random_rays_over_the_site_slope_match_dense_sampling() -> None:
    terr = sloped(20.0, 70.0, 300.0, craters=[
        CraterConfig(downrange_m=-400.0, radius_m=120.0, depth_m=25.0, rim_height_m=6.0)])
    rng = np.random.default_rng(3)
    checked = 0
    while checked < 16:
        r = point(rng.uniform(-900.0, 900.0), rng.uniform(-600.0, 600.0),
                  MEAN_RADIUS_M + rng.uniform(5.0, 600.0))
        if terr.altitude_m(r) < 1.0:
            continue
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        up = r / np.linalg.norm(r)
        if d @ up > 0.0:
            d -= 2.0 * (d @ up) * up
        got = terr.ray_range_m(r, d, 2000.0)
        ref = brute_first_hit(terr, r, d, 2000.0, 0.25)
        assert (got is None) == (ref is None)
        if ref is not None:
            assert ref - 0.25 - 0.01 <= got <= ref + 0.01
            assert abs(terr.altitude_m(r + got * d)) < 0.01
        checked += 1
