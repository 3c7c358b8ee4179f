"""The flight-software contract, checked (MicroPython-safe: the board runs it too).

A flight software is an object with ``step(frame)`` that returns
``(throttle, torque_nm, mode)`` or ``(throttle, torque_nm, mode, nav, flags)``; see
docs/your-fsw.md. :func:`command` turns what ``step`` returned into the COMMAND's fields
or raises :class:`ContractError` with the problem in a few words; :func:`software_name`
is the HELLO_ACK software string of a flight software class.
"""

import math

from bridge import protocol

FLAGS_LIMIT = 1 << 32
NAN = float("nan")


class ContractError(Exception):
    """What a flight software returned, or how it behaved, breaks the contract."""


def _float(value, what):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ContractError("%s is not a number: %s" % (what, _show(value)))
    if not math.isfinite(x):
        raise ContractError("%s is %r" % (what, x))
    return x


def _floats(value, n, what):
    try:
        count = len(value)
    except TypeError:
        raise ContractError("%s is not a sequence of %d numbers: %s" % (what, n, _show(value)))
    if count != n:
        raise ContractError("%s has %d values, expected %d" % (what, count, n))
    out = []
    for i in range(n):
        out.append(_float(value[i], "%s[%d]" % (what, i)))
    return tuple(out)


def _int(value, what, limit):
    if isinstance(value, bool):
        raise ContractError("%s is a bool (%r), expected an integer" % (what, value))
    try:
        i = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ContractError("%s is not an integer: %s" % (what, _show(value)))
    if i != value:
        raise ContractError("%s is not an integer: %s" % (what, _show(value)))
    if not 0 <= i < limit:
        raise ContractError("%s is %d, outside 0 .. %d" % (what, i, limit - 1))
    return i


def mode_index(mode):
    """The index into ``protocol.MODES`` of ``mode`` (a name or an index)."""
    if isinstance(mode, str):
        if mode in protocol.MODES:
            return protocol.MODES.index(mode)
        raise ContractError("unknown mode %r (modes: %s)" % (mode, ", ".join(protocol.MODES)))
    try:
        return _int(mode, "mode", len(protocol.MODES))
    except ContractError:
        raise ContractError("unknown mode %s (a name or an index 0 .. %d of %s)"
                            % (_show(mode), len(protocol.MODES) - 1, ", ".join(protocol.MODES)))


def command(result):
    """``(throttle, torque_nm, mode_index, nav or None, flags)`` from what ``step`` returned.

    Raises :class:`ContractError` on a wrong shape, a non-finite or non-numeric value, an
    unknown mode or flags outside 32 bits.
    """
    if not isinstance(result, (tuple, list)) or len(result) not in (3, 5):
        raise ContractError("step returned %s; expected (throttle, torque_nm, mode) or "
                            "(throttle, torque_nm, mode, nav, flags)" % _show(result))
    throttle = _float(result[0], "throttle")
    torque = _floats(result[1], 3, "torque_nm")
    mode = mode_index(result[2])
    nav = None
    flags = 0
    if len(result) == 5:
        if result[3] is not None:
            nav = _floats(result[3], 7, "nav")
        flags = _int(result[4], "flags", FLAGS_LIMIT)
    return throttle, torque, mode, nav, flags


def check_object(fsw):
    """Raise :class:`ContractError` unless ``fsw`` has a callable ``step``."""
    step = getattr(fsw, "step", None)
    if step is None or not callable(step):
        raise ContractError("has no step(frame) method")


def software_name(fsw):
    """HELLO_ACK's software string: ``NAME VERSION`` of the class (or instance), else its name."""
    name = getattr(fsw, "NAME", None)
    if not name:
        name = fsw.__name__ if isinstance(fsw, type) else type(fsw).__name__
    version = getattr(fsw, "VERSION", None)
    return "%s %s" % (name, version) if version else str(name)


def wire_nav(nav):
    """The COMMAND's nav field for ``nav`` (None: no estimate). Protocol 1 has no nil nav, so
    it carries seven NaNs there; from protocol 2 on, nil."""
    if nav is None and protocol.PROTOCOL_VERSION < 2:
        return (NAN,) * 7
    return nav


def _show(value):
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "%s %s" % (type(value).__name__, text)
