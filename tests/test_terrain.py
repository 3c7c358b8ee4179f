"""Terrain heights and ray casting against geometry anyone can compute."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant.config import CraterConfig, TerrainConfig
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
