"""A history's CSV text: cells and lines, without numpy (the history writer process,
:mod:`hil.engine.writer`, starts with this module and the schema alone).

Floats are written as ``repr`` writes them (shortest round-trip form, the float64 value
exactly), missing cells empty, integers as integers, text quoted only when it holds a
comma or a quote (line breaks become spaces so one row is one line).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

_float_repr = float.__repr__


def text_cell(s: str) -> str:  # also hil.history's general CSV writer
    """A string as one CSV cell on one line."""
    if "\n" in s or "\r" in s:
        s = s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    if "," in s or '"' in s:
        s = '"' + s.replace('"', '""') + '"'
    return s


def format_csv(kinds: Sequence[str], rows: Sequence[list]) -> str:
    """CSV lines for ``rows`` (column kinds from the schema), formatted column by column."""
    out = []
    for kind, col in zip(kinds, zip(*rows)):
        try:
            if kind == "f":   # float.__repr__: numpy floats too, as plain numbers
                out.append(list(map(_float_repr, col)))
            elif kind == "f?":
                out.append(["" if v is None else _float_repr(v) for v in col])
            elif kind == "i" or kind == "i?":
                out.append(["" if v is None else str(int(v)) for v in col])
            else:
                out.append([text_cell(str(v)) for v in col])
        except (TypeError, ValueError):   # not what the kind says: never lose the row
            out.append([_any_cell(v) for v in col])
    return "\n".join(map(",".join, zip(*out))) + "\n"


def _any_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return _float_repr(v)
    np = sys.modules.get("numpy")    # a numpy scalar exists only once numpy is imported
    if np is not None:
        if isinstance(v, np.floating):
            return _float_repr(float(v))
        if isinstance(v, np.integer):
            return str(int(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return str(int(v))
    return text_cell(str(v))
