"""Dispersions: which scenario keys vary from run to run in a campaign, and how they are drawn.

A scenario's ``[dispersions]`` table maps a key path to a distribution
(:class:`plant.config.DispersionConfig`)::

    [dispersions]
    "vehicle.isp_s" = { dist = "normal", sigma = 3.0, min = 310.0, max = 330.0 }
    "terrain.craters[*].downrange_m" = { dist = "uniform", low = -300.0, high = 300.0, apply = "add" }
    "imu.preset" = { dist = "choice", values = ["navigation", "tactical"], weights = [3, 1] }

A path names one scalar key: ``table.key``, ``table.list[i].key`` (0-based), ``[*]`` for every
element of a list (each drawn on its own), ``key[i]`` for one number of a list key
(``vehicle.inertia_kgm2[2]``). ``apply``: the draw is the value (``set``), is added to the
nominal value (``add``) or multiplies it (``scale``).

Randomness: run ``k`` of a campaign with seed ``S`` draws the values of each path from its own
generator, ``SeedSequence(S, spawn_key=(k, 1, crc32(path)))``, and its plant seed from
``spawn_key=(k, 0)``: a run's draws depend on neither the number of workers nor the other
runs nor the other dispersions.

Truth and knowledge: dispersing a ``[vehicle]`` key leaves what the flight software is told
(``[knowledge.vehicle]``) at the nominal value, unless that knowledge key is dispersed too.

This module knows the paths and the draws; ``hil.scenario`` checks the values against the
keys' types and ranges, ``hil.mc`` builds one scenario per run.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import typing
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from plant.config import DispersionConfig, ScenarioConfig, VehicleKnowledgeConfig

# Keys a campaign may not vary: identity, the seed (each run has its own) and the table itself.
FORBIDDEN = ("name", "description", "base", "run.seed", "dispersions")

_SEGMENT_RE = re.compile(r"^([A-Za-z_]\w*)(?:\[(\*|\d+)\])?$")


class DispersionError(ValueError):
    """A dispersion path or parameter that cannot work; ``key`` is the field at fault."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Target:
    """One concrete scalar a dispersion sets in each run."""

    path: str                    # "terrain.craters[1].radius_m", "vehicle.inertia_kgm2[0]"
    owner: type                  # the dataclass holding the field
    field: dataclasses.Field
    type: Any                    # the field's type hint
    index: int | None            # element of a list-of-numbers field
    nominal: Any                 # the value without dispersion (None: the scenario has none)


# ---------------------------------------------------------------- paths


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"vehicle": {"isp_s": {...spec}}}`` (TOML dotted keys) -> ``{"vehicle.isp_s": {...}}``.

    A table holding ``dist`` is a distribution; any other table is a step of the path.
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "dist" not in value and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def targets(cfg: ScenarioConfig, path: str) -> list[Target]:
    """The scalars ``path`` names in ``cfg`` (several for a ``[*]``); DispersionError if none."""
    if any(path == f or path.startswith(f + ".") or path.startswith(f + "[") for f in FORBIDDEN):
        raise DispersionError("", "this key cannot be dispersed (each run has its own seed; "
                                  "name, description, base and dispersions are fixed)")
    segments = path.split(".")
    out: list[Target] = []
    _walk(cfg, segments, "", path, out)
    return out


def _walk(obj: Any, segments: list[str], done: str, path: str, out: list[Target]) -> None:
    m = _SEGMENT_RE.match(segments[0])
    if not m:
        raise DispersionError("", f'bad step "{segments[0]}" (expected key, key[N] '
                                  f"or key[*])")
    name, index = m.group(1), m.group(2)
    cls = type(obj)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        import difflib
        close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        where = f"[{done.rstrip('.')}]" if done else "the scenario"
        raise DispersionError("", f'{where} has no key "{name}"{hint}')
    f = fields[name]
    tp = _hints(cls)[name]
    value = getattr(obj, name)
    here = done + name
    rest = segments[1:]
    if dataclasses.is_dataclass(tp):
        if index is not None:
            raise DispersionError("", f'[{here}] is a table, not a list')
        if not rest:
            raise DispersionError("", f"[{here}] is a table; name one of its keys")
        _walk(value, rest, here + ".", path, out)
        return
    if isinstance(value, list) and rest and not value:
        raise DispersionError("", f"{here} is empty: there is nothing to disperse")
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        if index is None or not rest:
            raise DispersionError("", f'{here} is a list of tables; name an element '
                                      f"and a key ({here}[0].KEY or {here}[*].KEY)")
        for i in _indices(index, len(value), here, path):
            _walk(value[i], rest, f"{here}[{i}].", path, out)
        return
    if rest:
        raise DispersionError("", f'{here} is a value, not a table')
    if isinstance(value, list) or list in _types(tp):
        if index is None:
            raise DispersionError("", f"{here} is a list; name one element ({here}[0])")
        items = value or []
        for i in _indices(index, len(items), here, path):
            out.append(Target(f"{here}[{i}]", cls, f, float, i, items[i]))
        return
    if index is not None:
        raise DispersionError("", f'{here} is not a list')
    out.append(Target(here, cls, f, tp, None, value))


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _indices(index: str, n: int, here: str, path: str) -> range:
    if index == "*":
        if n == 0:
            raise DispersionError("", f'{here} is empty')
        return range(n)
    i = int(index)
    if i >= n:
        raise DispersionError("", f'{here}[{i}] does not exist ({here} has {n} '
                                  f"element{'s' if n != 1 else ''}, from 0)")
    return range(i, i + 1)


def _types(tp: Any) -> tuple[Any, ...]:
    args = typing.get_args(tp)
    return tuple(typing.get_origin(a) or a for a in args) if args else (typing.get_origin(tp) or tp,)


def is_numeric(target: Target) -> bool:
    """A float or int key (not bool, not str)."""
    kinds = [t for t in _types(target.type) if t is not type(None)]
    return bool(kinds) and all(t in (float, int) for t in kinds)


def nominal(cfg: ScenarioConfig, target: Target) -> Any:
    """The value a run has without dispersion: the key's own, the truth for an unset
    ``[knowledge.vehicle]`` key, the preset's for an unset ``[imu]`` key; None if none."""
    if target.nominal is not None:
        return target.nominal
    name = target.field.name
    if target.owner is VehicleKnowledgeConfig:
        return getattr(cfg.vehicle, name)
    if target.path.startswith("imu."):
        from plant.imu import resolve_imu_config
        return resolve_imu_config(cfg.imu).get(name)
    return None


# ---------------------------------------------------------------- checks


def check_spec(cfg: ScenarioConfig, path: str, spec: DispersionConfig) -> list[Target]:
    """The distribution's parameters fit its kind and its key; returns the key's targets."""
    found = targets(cfg, path)
    numeric = all(is_numeric(t) for t in found)
    given = {k for k in ("mean", "sigma", "low", "high", "values", "weights", "min", "max")
             if getattr(spec, k) is not None}
    allowed = {"normal": {"mean", "sigma", "min", "max"}, "uniform": {"low", "high"},
               "choice": {"values", "weights"}}[spec.dist]
    wrong = sorted(given - allowed)
    if wrong:
        raise DispersionError(wrong[0], f"{wrong[0]} does not apply to dist = \"{spec.dist}\" "
                                        f"(it takes {', '.join(sorted(allowed))})")
    if spec.dist != "choice" and not numeric:
        raise DispersionError("dist", f'dist = "{spec.dist}" needs a number key; this one is '
                                      f'not (use dist = "choice")')
    if spec.apply != "set" and (spec.dist == "choice" or not numeric):
        raise DispersionError("apply", f'apply = "{spec.apply}" needs a number key and a '
                                       f"normal or uniform draw")
    if spec.dist == "normal":
        if spec.sigma is None:
            raise DispersionError("sigma", 'dist = "normal" needs sigma')
        if spec.min is not None and spec.max is not None and not spec.min < spec.max:
            raise DispersionError("min", f"min = {spec.min:g} must be less than max = "
                                         f"{spec.max:g}")
        if spec.mean is None and spec.apply == "set":
            for t in found:
                if nominal(cfg, t) is None:
                    raise DispersionError("mean", f'"{t.path}" has no value in the scenario; '
                                                  f"give mean")
    elif spec.dist == "uniform":
        if spec.low is None or spec.high is None:
            raise DispersionError("low" if spec.low is None else "high",
                                  'dist = "uniform" needs low and high')
        if not spec.low <= spec.high:
            raise DispersionError("low", f"low = {spec.low:g} must not exceed high = "
                                         f"{spec.high:g}")
    else:
        if not spec.values:
            raise DispersionError("values", 'dist = "choice" needs a non-empty values list')
        if spec.weights is not None:
            if len(spec.weights) != len(spec.values):
                raise DispersionError("weights", f"weights has {len(spec.weights)} elements; "
                                                 f"values has {len(spec.values)}")
            if not sum(spec.weights) > 0:
                raise DispersionError("weights", "weights must not all be 0")
    if spec.apply != "set":
        for t in found:
            if nominal(cfg, t) is None:
                raise DispersionError("apply", f'"{t.path}" has no value in the scenario to '
                                               f'{spec.apply}; use apply = "set"')
    return found


def out_of_range(target: Target, value: Any) -> str | None:
    """Why a drawn number is outside its key's range (field metadata ``lo``/``hi``), or None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    lo, hi = target.field.metadata.get("lo"), target.field.metadata.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return f"out of range ({'' if lo is None else f'{lo:g}'} .. {'' if hi is None else f'{hi:g}'})"
    return None


# ---------------------------------------------------------------- draws


def plant_seed(campaign_seed: int, run: int) -> int:
    """Run ``run``'s plant seed (63 bits, for ``[run] seed`` / ``--seed``)."""
    ss = np.random.SeedSequence(campaign_seed, spawn_key=(run, 0))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


class Plan:
    """A scenario's dispersions resolved once (targets, nominal values): draws per run."""

    def __init__(self, cfg: ScenarioConfig) -> None:
        self.entries = []
        for path, spec in cfg.dispersions.items():
            found = [(t, nominal(cfg, t), int in _types(t.type) and float not in _types(t.type))
                     for t in targets(cfg, path)]
            self.entries.append((path, spec, zlib.crc32(path.encode()), found))

    def draw(self, campaign_seed: int, run: int) -> dict[str, Any]:
        """Run ``run``'s value of every dispersed target, ``{concrete path: value}``."""
        out: dict[str, Any] = {}
        for _, spec, crc, found in self.entries:
            rng = np.random.default_rng(np.random.SeedSequence(campaign_seed,
                                                               spawn_key=(run, 1, crc)))
            for t, base, whole in found:
                out[t.path] = _one(spec, base, whole, rng)
        return out


def draw(cfg: ScenarioConfig, campaign_seed: int, run: int) -> dict[str, Any]:
    """Run ``run``'s value of every dispersed target, ``{concrete path: value}``, in table order.

    ``cfg`` must have passed the scenario loader (its dispersions are checked).
    """
    return Plan(cfg).draw(campaign_seed, run)


def _one(spec: DispersionConfig, base: Any, whole: bool, rng: np.random.Generator) -> Any:
    if spec.dist == "choice":
        weights = np.asarray(spec.weights if spec.weights is not None
                             else [1.0] * len(spec.values), dtype=float)
        return spec.values[int(rng.choice(len(spec.values), p=weights / weights.sum()))]
    if spec.dist == "uniform":
        x = float(rng.uniform(spec.low, spec.high))
    else:
        centre = spec.mean if spec.mean is not None else \
            {"set": base, "add": 0.0, "scale": 1.0}[spec.apply]
        x = _normal(rng, float(centre), float(spec.sigma), spec.min, spec.max)
    value = {"set": x, "add": (base or 0.0) + x, "scale": (base or 0.0) * x}[spec.apply]
    return int(round(value)) if whole else float(value)


def _normal(rng: np.random.Generator, mean: float, sigma: float, lo: float | None,
            hi: float | None) -> float:
    """A normal draw, truncated to [lo, hi] when bounds are given.

    Truncation by inverse transform (scipy.special's normal CDF and its inverse) on one
    uniform draw: exact, and one draw per value whatever the bounds. An interval in the upper
    tail is mirrored into the lower one, where the CDF keeps its precision.
    """
    if sigma == 0.0:
        return float(np.clip(mean, -np.inf if lo is None else lo, np.inf if hi is None else hi))
    if lo is None and hi is None:
        return float(rng.normal(mean, sigma))
    from scipy.special import ndtr, ndtri
    a = -np.inf if lo is None else (lo - mean) / sigma
    b = np.inf if hi is None else (hi - mean) / sigma
    flip = a > 0.0
    if flip:
        a, b = -b, -a
    p_lo, p_hi = float(ndtr(a)), float(ndtr(b))
    u = float(rng.uniform())
    if p_hi > p_lo:
        z = float(ndtri(p_lo + u * (p_hi - p_lo)))
    else:  # bounds far out in the tail: scipy's dedicated sampler
        from scipy.stats import truncnorm
        z = float(truncnorm.ppf(u, a, b))
    z = min(max(z, a), b)  # rounding at the ends
    return mean + sigma * (-z if flip else z)


def apply(data: dict[str, Any], cfg: ScenarioConfig, draws: dict[str, Any]) -> dict[str, Any]:
    """A scenario dict (``scenario_to_dict`` form) with ``draws`` set in it, the told vehicle
    pinned to the nominal where only the truth is dispersed, and no ``[dispersions]``."""
    out = copy.deepcopy(data)
    out["dispersions"] = {}
    out["base"] = None
    told = out.setdefault("knowledge", {}).setdefault("vehicle", {})
    for path in draws:
        if path.startswith("vehicle."):
            name = path.split(".", 1)[1]
            if name in _TOLD and told.get(name) is None:
                told[name] = getattr(cfg.vehicle, name)
    for path, value in draws.items():
        _set(out, path, value)
    return out


_TOLD = {f.name for f in dataclasses.fields(VehicleKnowledgeConfig)}


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    node: Any = data
    steps = path.split(".")
    for i, step in enumerate(steps):
        m = _SEGMENT_RE.match(step)
        assert m, path
        name, index = m.group(1), m.group(2)
        last = i == len(steps) - 1
        if index is None:
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
        elif last:
            node[name][int(index)] = value
        else:
            node = node[name][int(index)]
