"""Which flight software runs: a spec string resolved to a factory and a source file.

Spec forms (``--fsw SPEC`` on ``fsil run``, ``fsil fsw``, ``fsil hil``)::

    default, legacy          fsil's own flight software (fsw/reference.py)
    NAME                     an installed package's entry point in group ``fsil.fsw``
    MODULE:CLASS             a class in an importable module (``my_pkg.gnc:Lander``)
    PATH/TO/FILE.py:CLASS    a class in a Python file anywhere (its folder goes on sys.path)

:func:`resolve` returns an :class:`FswEntry`: ``.name``, ``.factory(config)`` (constructs
the flight software from the HELLO config map), ``.source_file`` (the module's file, copied
to a board) and ``.board_spec`` (how the board firmware imports it). Nothing is imported
until :meth:`FswEntry.load` or the first ``factory`` call, so a board's module need not
import under CPython; :func:`resolve` with ``load=True`` imports it at once, so that a bad
spec is one configuration line (exit 2) before any run starts.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import ConfigError

GROUP = "fsil.fsw"
BUILTIN = ("default", "legacy")
FSW_DIR = Path(__file__).resolve().parent.parent       # fsw/: the board firmware carries it


class FswSpecError(ConfigError):
    """A ``--fsw`` spec that names nothing usable (exit 2)."""


@dataclass
class FswEntry:
    """A resolved flight software: what to construct, and where its code lives."""

    name: str                       # the spec as given: "default", "my_fsw.py:MyFsw", ...
    module: str                     # import name on this host
    attr: str                       # class (or factory) name in the module
    source_file: Path | None        # the module's file (None: not a file, e.g. a C extension)
    builtin: bool = False           # fsil's own: already part of the board firmware
    path_entry: str | None = None   # folder put on sys.path to import a FILE.py spec
    _obj: Any = field(default=None, repr=False)

    @property
    def board_spec(self) -> str:
        """How the board firmware names it: ``default``/``legacy`` or ``module:Class`` for a
        file copied to the board's root (hil/pico/board.py :func:`load_fsw`)."""
        if self.builtin:
            return self.name
        stem = self.source_file.stem if self.source_file else self.module.rpartition(".")[2]
        return f"{stem}:{self.attr}"

    @property
    def spec(self) -> str:
        """The spec for another process on this host (a file's path made absolute)."""
        if self.path_entry is not None and self.source_file is not None:
            return f"{self.source_file}:{self.attr}"
        return self.name

    @property
    def label(self) -> str:
        """How a one-line error names it: ``MyFsw (examples/my_fsw.py)``."""
        where = self.source_file.name if self.source_file and not self.builtin else self.module
        return f"{self.attr} ({where})"

    def load(self) -> Any:
        """Import the module and return the class or factory (cached)."""
        if self._obj is None:
            self._obj = _import_attr(self)
        return self._obj

    def factory(self, config: dict) -> Any:
        """Construct the flight software from the HELLO ``config`` map."""
        return self.load()(config)


def available() -> dict[str, str]:
    """Every name ``--fsw`` takes without a colon: built-ins and installed entry points."""
    names = {"default": "fsw.reference:Default", "legacy": "fsw.reference:Legacy"}
    for ep in _entry_points():
        names.setdefault(ep.name, ep.value)
    return names


def resolve(spec: str, load: bool = False) -> FswEntry:
    """The :class:`FswEntry` for ``spec``; :class:`FswSpecError` (one line) if it names nothing.

    ``load=True`` also imports it (and checks the name is callable), so an import error is
    reported now instead of at the run's handshake.
    """
    spec = spec.strip()
    if not spec:
        raise FswSpecError("--fsw: empty flight software spec")
    if spec in BUILTIN:
        entry = FswEntry(spec, "fsw.reference", spec.capitalize(), FSW_DIR / "reference.py",
                         builtin=True)
    elif ":" not in spec:
        entry = _entry_point(spec)
    else:
        where, _, attr = spec.rpartition(":")
        if not attr.isidentifier() or not where:
            raise FswSpecError(f"--fsw {spec}: expected MODULE:CLASS or PATH/FILE.py:CLASS")
        if where.endswith(".py") or "/" in where or os.sep in where:
            entry = _file_entry(spec, where, attr)
        else:
            entry = _module_entry(spec, where, attr)
    if load:
        obj = entry.load()
        if not callable(obj):
            raise FswSpecError(f"--fsw {spec}: {entry.attr} in {entry.module} is not a class "
                               f"or factory ({type(obj).__name__})")
    return entry


# --- the forms ---------------------------------------------------------------------------
def _entry_points() -> list:
    try:
        return list(importlib.metadata.entry_points(group=GROUP))
    except Exception:  # broken metadata of some other package must not stop a run
        return []


def _entry_point(spec: str) -> FswEntry:
    for ep in _entry_points():
        if ep.name == spec:
            module, _, attr = ep.value.partition(":")
            module = module.strip()
            attr = attr.strip()
            if not attr:
                raise FswSpecError(f"--fsw {spec}: entry point {ep.value!r} of group {GROUP} "
                                   "names no class (MODULE:CLASS)")
            return FswEntry(spec, module, attr, _module_file(module))
    names = ", ".join(sorted(available()))
    raise FswSpecError(f"--fsw {spec}: no such flight software; give one of {names} "
                       f"(built-in or installed in group {GROUP}), MODULE:CLASS or "
                       f"PATH/FILE.py:CLASS")


def _module_entry(spec: str, module: str, attr: str) -> FswEntry:
    if not all(part.isidentifier() for part in module.split(".")):
        raise FswSpecError(f"--fsw {spec}: {module!r} is not a module name "
                           "(a file needs its path ending in .py)")
    return FswEntry(spec, module, attr, _module_file(module))


def _file_entry(spec: str, where: str, attr: str) -> FswEntry:
    path = Path(where).expanduser()
    if path.suffix != ".py":
        raise FswSpecError(f"--fsw {spec}: {where} is not a Python file (.py)")
    if not path.is_file():
        raise FswSpecError(f"--fsw {spec}: no such file: {where}")
    path = path.resolve()
    if not path.stem.isidentifier():
        raise FswSpecError(f"--fsw {spec}: {path.name} cannot be imported (the file name must "
                           "be a Python identifier)")
    return FswEntry(spec, path.stem, attr, path, path_entry=str(path.parent))


def _module_file(module: str) -> Path | None:
    """The file of ``module`` without running it (None when it cannot be found now)."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin or found.origin in ("built-in", "frozen"):
        return None
    return Path(found.origin)


def _import_attr(entry: FswEntry) -> Any:
    what = f"--fsw {entry.name}"
    if entry.path_entry is not None:
        loaded = sys.modules.get(entry.module)
        if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() \
                != entry.source_file:
            raise FswSpecError(f"{what}: the module name {entry.module!r} is taken by "
                               f"{getattr(loaded, '__file__', None) or 'a built-in module'}; "
                               "rename the file")
        if entry.path_entry not in sys.path:
            sys.path.insert(0, entry.path_entry)
    try:
        module = importlib.import_module(entry.module)
    except Exception as e:
        raise FswSpecError(f"{what}: cannot import {entry.module}: {_one_line(e)}") from e
    if entry.path_entry is not None and entry.source_file is not None:
        got = Path(getattr(module, "__file__", "") or "").resolve()
        if got != entry.source_file:
            raise FswSpecError(f"{what}: importing {entry.module!r} found {got}, not "
                               f"{entry.source_file}; rename the file")
    try:
        return getattr(module, entry.attr)
    except AttributeError:
        raise FswSpecError(f"{what}: {entry.module} has no {entry.attr}") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__

