"""Scenario files: find, read and validate a TOML file into a :class:`ScenarioConfig`.

A scenario file maps one-to-one onto ``plant.config.ScenarioConfig``: top-level keys
``name`` and ``description``, one table per nested dataclass (``[rates]``, ``[vehicle]``,
...), ``[[terrain.craters]]`` / ``[[terrain.cliffs]]`` entries as :class:`CraterConfig` /
:class:`CliffConfig`. Validation is generic: it
walks the dataclass fields and their metadata (``lo``/``hi``, inclusive; ``help``), so a new
field in ``plant.config`` is checked without touching this module. A ``str`` field whose
help text reads ``"a | b | c"`` only accepts one of those words.

Every problem raises :class:`hil.errors.ScenarioError` naming the file and the key, e.g.::

    scenario "x.toml": [vehicle] max_thrust_n = -5 is out of range (1 .. 1e7)

``python -m hil.scenario`` lists the shipped scenarios; ``--markdown`` prints the key
reference used in ``docs/scenarios.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from hil.errors import ScenarioError
from hil import dispersions as _dispersions
from plant.config import (CliffConfig, CraterConfig, DispersionConfig, FaultConfig, ScenarioConfig,
                          TerrainConfig)

SCENARIO_DIR = Path(__file__).parent / "scenarios"

# Fields that hold a list of tables ([[table.key]]), and the dataclass each entry maps to.
_ITEM_TYPES: dict[tuple[type, str], type] = {(TerrainConfig, "craters"): CraterConfig,
                                             (TerrainConfig, "cliffs"): CliffConfig,
                                             (ScenarioConfig, "faults"): FaultConfig}
# Fields that hold a table of tables keyed by name ([dispersions]), and each entry's dataclass.
_KEYED_TYPES: dict[tuple[type, str], type] = {(ScenarioConfig, "dispersions"): DispersionConfig}
# List fields whose elements may be of any scalar type (checked elsewhere against their key).
_ANY_ITEMS = {(DispersionConfig, "values")}
MAX_BASE_DEPTH = 8

_CHOICES_RE = re.compile(r"^\s*[\w.-]+(\s*\|\s*[\w.-]+)+\s*$")


# ---------------------------------------------------------------- public API


def load_scenario(name_or_path: str | os.PathLike[str]) -> ScenarioConfig:
    """Load and validate a scenario: a shipped name (``"nominal"``) or a path to a ``.toml`` file.

    A name without ``.toml`` and without a path separator is looked up in ``hil/scenarios/``.
    A file without a ``name`` key is named after its file stem. A file with ``base = "..."``
    starts from that scenario (a shipped name, or a path relative to the file): its tables
    are merged key by key over the base's, lists (``[[terrain.craters]]``, ...) replace the
    base's whole, ``[dispersions]`` entries are added to or replace the base's by key.
    """
    path = _resolve(name_or_path)
    shown = str(path) if _is_shipped_name(name_or_path) else os.fspath(name_or_path)
    return scenario_from_dict(_read_scenario(path, shown, []), source=shown)


def _read_scenario(path: Path, shown: str, chain: list[Path]) -> dict[str, Any]:
    """The file's dict, named, with its ``base`` chain merged in (each base validated)."""
    data = _read_toml(path, shown)
    if "name" not in data:
        data = {"name": path.stem, **data}
    base = data.get("base")
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioError(shown, "base", f"base = {_show(base)} is {_describe(base)}; "
                                           f"expected a scenario name or a path")
    chain = chain + [path.resolve()]
    ref = base if _is_shipped_name(base) else os.fspath(path.parent / base)
    try:
        base_path = _resolve(ref)
    except ScenarioError as error:
        raise ScenarioError(shown, "base", f'base = "{base}": {error.reason}') from None
    if base_path.resolve() in chain:
        names = " -> ".join(p.name for p in chain + [base_path])
        raise ScenarioError(shown, "base", f'base = "{base}" leads back to itself ({names})')
    if len(chain) > MAX_BASE_DEPTH:
        raise ScenarioError(shown, "base", f"more than {MAX_BASE_DEPTH} bases in a chain")
    base_shown = str(base_path) if _is_shipped_name(base) else ref
    base_data = _read_scenario(base_path, base_shown, chain)
    scenario_from_dict(base_data, source=base_shown)  # the base's own errors name its file
    return _merge(base_data, data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over``'s keys over ``base``'s: tables merged key by key, everything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if key == "dispersions" and isinstance(value, dict) \
                and isinstance(base.get(key), dict):
            out[key] = {**_dispersions.flatten(base[key]), **_dispersions.flatten(value)}
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> ScenarioConfig:
    """Validate a parsed scenario (as from TOML or :func:`scenario_to_dict`) into a config.

    ``source`` names the origin in error messages. Optional fields may be ``None``.
    """
    cfg = _build(ScenarioConfig, data, _Where(source, "", ""))
    _check_cross_fields(cfg, source)
    return cfg


def fault_from_dict(data: Any, source: str = "<fault>") -> FaultConfig:
    """Validate one fault (a ``[[faults]]`` table's keys, e.g. a run-time request) into a config.

    The same rules as in a scenario file; raises :class:`ScenarioError` (``key`` is the field).
    """
    cfg = _build(FaultConfig, data, _Where(source, "", ""))
    _check_fault(cfg, _Where(source, "", ""))
    return cfg


def scenario_to_dict(cfg: ScenarioConfig) -> dict[str, Any]:
    """Plain nested dict of a config (for summary.json and the flight software handshake)."""
    return dataclasses.asdict(cfg)


def list_scenarios() -> list[tuple[str, str]]:
    """``(name, description)`` of every shipped scenario, sorted by name."""
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        try:
            with path.open("rb") as f:
                description = str(tomllib.load(f).get("description", ""))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            description = f"(unreadable: {error})"
        out.append((path.stem, description))
    return out


# ---------------------------------------------------------------- finding and reading


def _is_shipped_name(name_or_path: str | os.PathLike[str]) -> bool:
    s = os.fspath(name_or_path)
    seps = [os.sep] + ([os.altsep] if os.altsep else []) + ["/"]
    return not s.endswith(".toml") and not any(sep in s for sep in seps)


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    s = os.fspath(name_or_path)
    if not _is_shipped_name(s):
        return Path(s)
    path = SCENARIO_DIR / f"{s}.toml"
    if not path.is_file():
        shipped = ", ".join(name for name, _ in list_scenarios()) or "none"
        hint = _suggest(s, [name for name, _ in list_scenarios()], "")
        raise ScenarioError(s, "", f'no shipped scenario named "{s}"{hint}; shipped: {shipped} '
                                   f'(give a path to a .toml file to use your own)')
    return path


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as error:
        raise ScenarioError(shown, "", "file not found") from error
    except IsADirectoryError as error:
        raise ScenarioError(shown, "", "is a directory, not a file") from error
    except OSError as error:
        raise ScenarioError(shown, "", f"cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ScenarioError(shown, "", f"not UTF-8 text ({error.reason} at byte {error.start})") \
            from error
    except tomllib.TOMLDecodeError as error:
        msg = str(error)
        m = re.search(r"\s*\(at (line \d+, column \d+|end of document)\)\s*$", msg)
        where, what = (m.group(1), msg[:m.start()]) if m else ("?", msg)
        raise ScenarioError(shown, "", f"TOML syntax error at {where}: {what}") from error


# ---------------------------------------------------------------- generic validation


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where we are in the file: file name, table label for messages, dotted key prefix."""

    source: str
    label: str     # "[vehicle]", "[[terrain.craters]] #2:", "" at top level
    prefix: str    # "vehicle.", "terrain.craters[1].", "" at top level

    def fail(self, key: str, reason: str) -> ScenarioError:
        text = f"{self.label} {reason}" if self.label else reason
        return ScenarioError(self.source, (self.prefix + key).rstrip("."), text)


def _build(cls: type, data: Any, where: _Where) -> Any:
    """Instantiate dataclass ``cls`` from a dict, checking every key and value."""
    if not isinstance(data, dict):
        raise where.fail("", f"expected a table, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown(cls, key, value, fields, hints, where)
        f, tp = fields[key], hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise where.fail(key, f"{key} = {_show(value)}: expected a table [{key}]")
            kwargs[key] = _build(tp, value, _Where(where.source, f"[{where.prefix}{key}]",
                                                   f"{where.prefix}{key}."))
        elif (cls, key) in _KEYED_TYPES:
            if not isinstance(value, dict):
                raise where.fail(key, f"{key} = {_show(value)}: expected a table [{key}]")
            kwargs[key] = {
                name: _build(_KEYED_TYPES[cls, key], entry,
                             _Where(where.source, f'[{where.prefix}{key}] "{name}":',
                                    f'{where.prefix}{key}."{name}".'))
                for name, entry in _dispersions.flatten(value).items()}
        else:
            kwargs[key] = _value(cls, f, tp, value, where)
    for name, f in fields.items():
        if f.metadata.get("required") and kwargs.get(name) is None:
            choices = _choices(f.metadata)
            raise where.fail(name, f"needs {name}" + (f" ({' | '.join(choices)})" if choices else ""))
    return cls(**kwargs)


def _unknown(cls: type, key: str, value: Any, fields: dict[str, dataclasses.Field],
             hints: dict[str, Any], where: _Where) -> ScenarioError:
    tables = [k for k in fields if dataclasses.is_dataclass(hints[k]) or (cls, k) in _KEYED_TYPES]
    keys = [k for k in fields if k not in tables]
    if where.label == "":  # top level: tables and plain keys
        suggestion = _suggest(key, tables if isinstance(value, dict) else keys,
                              "[]" if isinstance(value, dict) else "")
        what = f"unknown table [{key}]" if isinstance(value, dict) else f'unknown key "{key}"'
        valid = f"valid top-level keys: {', '.join(keys)}; tables: " \
                + ", ".join(f"[{t}]" for t in tables)
        return where.fail(key, f"{what}{suggestion}; {valid}")
    return where.fail(key, f'unknown key "{key}"{_suggest(key, list(fields), "")}; '
                           f"valid keys: {', '.join(fields)}")


def _value(cls: type, f: dataclasses.Field, tp: Any, value: Any, where: _Where) -> Any:
    """Check one scalar or list value against its type and metadata; return it normalised."""
    key = f.name
    allowed = _allowed_types(tp)
    if value is None:
        if type(None) in allowed:
            return None
        raise where.fail(key, f"{key} has no value")
    item_cls = _ITEM_TYPES.get((cls, key))
    if item_cls is not None:
        if not isinstance(value, list):
            raise where.fail(key, f"{key} = {_show(value)}: expected a list of "
                                  f"[[{where.prefix}{key}]] tables")
        return [_build(item_cls, item, _Where(where.source, f"[[{where.prefix}{key}]] #{i + 1}:",
                                              f"{where.prefix}{key}[{i}]."))
                for i, item in enumerate(value)]
    if list in allowed:
        if not isinstance(value, list):
            raise where.fail(key, f"{key} = {_show(value)} is {_describe(value)}; expected a list")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else []
        if default and len(value) != len(default):
            raise where.fail(key, f"{key} = {_show(value)} has {len(value)} elements; "
                                  f"expected {len(default)}")
        if (cls, key) in _ANY_ITEMS:
            for i, v in enumerate(value):
                if isinstance(v, (list, dict)):
                    raise where.fail(key, f"{key}[{i}] = {_show(v)} is {_describe(v)}; "
                                          f"expected a number, a string or a boolean")
            return list(value)
        elem_type = type(default[0]) if default else float
        return [_scalar(f"{key}[{i}]", elem_type, v, f.metadata, key, where)
                for i, v in enumerate(value)]
    scalar = [t for t in allowed if t is not type(None)]
    return _scalar(key, scalar[0] if len(scalar) == 1 else float, value, f.metadata, key, where)


def _scalar(label: str, tp: type, value: Any, meta: typing.Mapping[str, Any], key: str,
            where: _Where) -> Any:
    """One value of type ``tp`` (float, int, str or bool), range- and choice-checked."""
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.fail(key, f"{label} = {_show(value)} is {_describe(value)}; "
                                  f"expected a number")
        value = float(value)
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.fail(key, f"{label} = {_show(value)} is {_describe(value)}; "
                                  f"expected an integer")
    elif tp is bool:
        if not isinstance(value, bool):
            raise where.fail(key, f"{label} = {_show(value)} is {_describe(value)}; "
                                  f"expected true or false")
        return value
    elif tp is str:
        if not isinstance(value, str):
            raise where.fail(key, f"{label} = {_show(value)} is {_describe(value)}; "
                                  f"expected a string")
        choices = _choices(meta)
        if choices and value not in choices:
            raise where.fail(key, f"{label} = {_show(value)} is not one of "
                                  f"{', '.join(choices)}{_suggest(value, choices, '')}")
        return value
    else:  # a field type this loader does not know: pass through
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise where.fail(key, f"{label} = {_show(value)} is not a finite number")
    lo, hi = meta.get("lo"), meta.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise where.fail(key, f"{label} = {_show(value)} is out of range ({_range(lo, hi)})")
    return value


def _check_cross_fields(cfg: ScenarioConfig, source: str) -> None:
    """Relations between fields that one field's range cannot express."""
    r = cfg.rates
    for big, small, why in (
        ("physics_hz", "frame_hz", ""),
        ("physics_hz", "imu_hz", ""),
        ("imu_hz", "frame_hz", " (every frame must carry the same number of IMU samples)"),
    ):
        a, b = getattr(r, big), getattr(r, small)
        if not _is_multiple(a, b):
            raise ScenarioError(source, f"rates.{big}",
                                f"[rates] {big} = {_show(a)} is not an integer multiple of "
                                f"{small} = {_show(b)}{why}")
    from bridge.codec import MAX_IMU_SAMPLES_PER_FRAME
    per_frame = r.imu_hz / r.frame_hz
    if per_frame > MAX_IMU_SAMPLES_PER_FRAME:
        raise ScenarioError(source, "rates.imu_hz",
                            f"[rates] imu_hz / frame_hz = {per_frame:g} IMU samples per frame; "
                            f"a frame holds at most {MAX_IMU_SAMPLES_PER_FRAME}")
    if 1e6 % r.physics_hz != 0:
        raise ScenarioError(source, "rates.physics_hz",
                            f"[rates] physics_hz = {_show(r.physics_hz)} must divide one second "
                            f"into whole microseconds")
    alt = cfg.altimeter
    if not alt.min_range_m < alt.max_range_m:
        raise ScenarioError(source, "altimeter.min_range_m",
                            f"[altimeter] min_range_m = {_show(alt.min_range_m)} must be less "
                            f"than max_range_m = {_show(alt.max_range_m)}")
    if math.sqrt(sum(float(x) ** 2 for x in alt.boresight_body)) < 1e-6:
        raise ScenarioError(source, "altimeter.boresight_body",
                            f"[altimeter] boresight_body = {_show(alt.boresight_body)} "
                            f"must not be zero")
    for i, fault in enumerate(cfg.faults):
        if fault.sensor == "altimeter" and fault.kind in ("power", "sensitivity") \
                and not alt.link_budget:
            raise ScenarioError(source, f"faults[{i}].kind",
                                f'[[faults]] #{i + 1}: kind = "{fault.kind}" acts on the '
                                f"altimeter's link budget: set [altimeter] link_budget = true")
    vel = cfg.velocimeter
    from plant.velocimeter import beams_problem
    problem = beams_problem(vel.beams_body)
    if problem:
        raise ScenarioError(source, "velocimeter.beams_body",
                            f"[velocimeter] beams_body = {_show(vel.beams_body)} {problem}")
    if not vel.min_range_m < vel.max_range_m:
        raise ScenarioError(source, "velocimeter.min_range_m",
                            f"[velocimeter] min_range_m = {_show(vel.min_range_m)} must be less "
                            f"than max_range_m = {_show(vel.max_range_m)}")
    dl = cfg.deadline
    period_s = dl.period_s if dl.period_s is not None else 1.0 / r.frame_hz
    if dl.deadline_s is not None and dl.deadline_s > period_s * (1 + 1e-9):
        raise ScenarioError(source, "deadline.deadline_s",
                            f"[deadline] deadline_s = {_show(dl.deadline_s)} must be at most "
                            f"the period, {_show(period_s)} s"
                            + ("" if dl.period_s is not None else " (1 / frame_hz)"))
    if dl.lost_after_s < (dl.deadline_s or period_s):
        raise ScenarioError(source, "deadline.lost_after_s",
                            f"[deadline] lost_after_s = {_show(dl.lost_after_s)} must be at "
                            f"least the deadline, {_show(dl.deadline_s or period_s)} s")
    for i, fault in enumerate(cfg.faults):
        _check_fault(fault, _Where(source, f"[[faults]] #{i + 1}:", f"faults[{i}]."))
    for path, spec in cfg.dispersions.items():
        _check_dispersion(cfg, path, spec, _Where(source, f'[dispersions] "{path}":',
                                                  f'dispersions."{path}".'))


def _check_dispersion(cfg: ScenarioConfig, path: str, spec: DispersionConfig,
                      where: _Where) -> None:
    """The path names scalar keys, the parameters fit, a choice's values fit every key."""
    try:
        found = _dispersions.check_spec(cfg, path, spec)
    except _dispersions.DispersionError as error:
        raise where.fail(error.key, error.reason) from None
    if spec.dist != "choice":
        return
    for t in found:
        hints = _allowed_types(t.type) if t.index is None else (float,)
        kinds = [k for k in hints if k is not type(None)]
        tp = kinds[0] if len(kinds) == 1 else float
        for i, v in enumerate(spec.values or []):
            _scalar(f"values[{i}]", tp, v, t.field.metadata, "values",
                    _Where(where.source, f'{where.label} for "{t.path}",', where.prefix))


def _check_fault(fault: FaultConfig, where: _Where) -> None:
    """A fault's sensor/kind combination and the parameters its kind needs (plant.faults)."""
    from plant.faults import FaultSpecError, check_fault
    try:
        check_fault(fault)
    except FaultSpecError as error:
        raise where.fail(error.key, error.reason) from None


def _is_multiple(a: float, b: float) -> bool:
    """``a`` is ``n * b`` for a whole ``n >= 1`` (to rounding)."""
    ratio = a / b
    n = round(ratio)
    return n >= 1 and abs(ratio - n) <= 1e-9 * ratio


# ---------------------------------------------------------------- helpers


def _allowed_types(tp: Any) -> tuple[Any, ...]:
    """``float | None`` -> (float, NoneType); ``list[float]`` -> (list,); ``float`` -> (float,)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return tuple(typing.get_origin(a) or a for a in typing.get_args(tp))
    return (typing.get_origin(tp) or tp,)


def _choices(meta: typing.Mapping[str, Any]) -> list[str]:
    text = meta.get("help", "") or ""
    return [c.strip() for c in text.split("|")] if _CHOICES_RE.match(text) else []


def _suggest(word: str, candidates: list[str], brackets: str) -> str:
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not match:
        return ""
    shown = f"[{match[0]}]" if brackets else f'"{match[0]}"'
    return f" (did you mean {shown}?)"


def _fmt_num(x: float | int) -> str:
    """Compact number: 1e7, 0.1, -5, 1692.5 (no trailing .0, no exponent padding)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return {math.inf: "inf", -math.inf: "-inf"}.get(x, "nan")
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-4):
        mantissa, exponent = f"{x:.12e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    if x.is_integer():
        return str(int(x))
    return repr(x)


def _show(value: Any) -> str:
    """A value as it would look in TOML."""
    if isinstance(value, (bool, int, float)):
        return _fmt_num(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return repr(value)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{_fmt_num(lo)} .. {_fmt_num(hi)}"
    return f">= {_fmt_num(lo)}" if lo is not None else f"<= {_fmt_num(hi)}"


# ---------------------------------------------------------------- reference for the docs

_UNITS = {  # field-name suffix -> unit
    "_hz": "Hz", "_kg": "kg", "_n": "N", "_s": "s", "_kgm2": "kg m²", "_nm": "N m", "_m": "m",
    "_mps": "m/s", "_deg": "deg", "_dph": "deg/h", "_dpsh": "deg/√h", "_ppm": "ppm",
    "_dps": "deg/s", "_rad": "rad", "_ug": "µg", "_mpsh": "m/s/√h", "_g": "g", "_mrad": "mrad",
    "_rad_s": "rad/s", "_m3ps2": "m³/s²", "_n_per_m": "N/m", "_n_s_per_m": "N s/m",
}


def _humanize(name: str) -> str:
    """Fallback meaning from a field name: ``dry_mass_kg`` -> ``dry mass``."""
    unit = _unit(name)
    stem = name[: name.rfind("_")] if unit else name
    words = {"lat": "latitude", "lon": "longitude"}
    return " ".join(words.get(w, w) for w in stem.split("_"))


def _unit(name: str) -> str:
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if name.endswith(suffix):
            return _UNITS[suffix]
    return ""


def reference_markdown() -> str:
    """Markdown tables of every table and key: type, default, range, unit, meaning."""
    lines: list[str] = []

    def table(cls: type, heading: str) -> None:
        doc = (cls.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        lines.extend([f"### {heading}" if " " in heading else f"### `{heading}`", "", doc, "",
                      "| key | type | default | range | unit | meaning |",
                      "|---|---|---|---|---|---|"])
        field_hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(field_hints[f.name]):
                continue
            lines.append(_reference_row(cls, f, field_hints[f.name]))
        lines.append("")

    def tables(cls: type, prefix: str) -> None:  # nested tables ([knowledge.vehicle]) too
        cls_hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = cls_hints[f.name]
            if dataclasses.is_dataclass(tp):
                table(tp, f"[{prefix}{f.name}]")
                for (owner, key), item in _ITEM_TYPES.items():
                    if owner is tp:
                        table(item, f"[[{prefix}{f.name}.{key}]]")
                tables(tp, f"{prefix}{f.name}.")

    table(ScenarioConfig, "top-level keys")
    tables(ScenarioConfig, "")
    for (owner, key), item in _ITEM_TYPES.items():
        if owner is ScenarioConfig:
            table(item, f"[[{key}]]")
    for (owner, key), item in _KEYED_TYPES.items():
        if owner is ScenarioConfig:
            table(item, f'[{key}] "KEY"')
    return "\n".join(lines).rstrip() + "\n"


def _reference_row(cls: type, f: dataclasses.Field, tp: Any) -> str:
    allowed = [t for t in _allowed_types(tp) if t is not type(None)]
    optional = type(None) in _allowed_types(tp)
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if (cls, f.name) in _ITEM_TYPES or (cls, f.name) in _KEYED_TYPES:
        kind = "tables"
    elif list in allowed:
        kind = f"{len(default)} numbers" if default else "list"
    else:
        kind = {float: "number", int: "integer", str: "string", bool: "boolean"}.get(
            allowed[0], allowed[0].__name__)
    if optional and not f.metadata.get("required"):
        kind += " (optional)"
    shown_default = "required" if f.metadata.get("required") else \
        {"ImuConfig": "from preset", "FaultConfig": "none", "ScenarioConfig": "none",
         "DispersionConfig": "none", "VehicleKnowledgeConfig": "the truth"}.get(cls.__name__, "derived") \
        if default is None else \
        "none" if default in ([], {}) else f"`{_show(default)}`"
    choices = _choices(f.metadata)
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    rng = " \\| ".join(f"`{c}`" for c in choices) if choices else \
        _range(lo, hi) if lo is not None or hi is not None else ""
    help_text = "" if choices else (f.metadata.get("help", "") or _humanize(f.name))
    help_text = help_text.replace("|", "\\|")
    return f"| `{f.name}` | {kind} | {shown_default} | {rng} | {_unit(f.name)} | {help_text} |"


def main(argv: list[str] | None = None) -> int:
    """``python -m hil.scenario [--markdown | FILE...]``: list, document or check scenarios."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--markdown"]:
        sys.stdout.write(reference_markdown())
        return 0
    if not args:
        for name, description in list_scenarios():
            print(f"{name:12s} {description}")
        return 0
    for arg in args:
        try:
            cfg = load_scenario(arg)
        except ScenarioError as error:
            print(error, file=sys.stderr)
            return error.exit_code
        print(f"{arg}: ok ({cfg.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
