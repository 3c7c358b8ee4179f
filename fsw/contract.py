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
N_MODES = len(protocol.MODES)
NAN = float("nan")


class ContractError(Exception):
    """What a flight software returned, or how it behaved, breaks the contract."""


def _float(value, what):
    if type(value) is float and value - value == 0.0:   # the common case: a finite float
        return value
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
    out = tuple(value)
    for x in out:
        if type(x) is not float or x - x != 0.0:        # not a finite float: look closer
            return tuple([_float(out[i], "%s[%d]" % (what, i)) for i in range(n)])
    return out


def _int(value, what, limit):
    if type(value) is int and 0 <= value < limit:       # (limit <= 2^32: flags, modes)
        return value
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
    unknown mode or flags outside 32 bits. A board calls this every cycle, so the usual
    case (finite floats in tuples or lists, an int mode and flags) takes few calls.
    """
    kind = type(result)
    if (kind is not tuple and kind is not list) or len(result) not in (3, 5):
        raise ContractError("step returned %s; expected (throttle, torque_nm, mode) or "
                            "(throttle, torque_nm, mode, nav, flags)" % _show(result))
    throttle = result[0]
    if type(throttle) is not float or throttle - throttle != 0.0:
        throttle = _float(throttle, "throttle")
    torque = result[1]
    kind = type(torque)
    if kind is not tuple and kind is not list or len(torque) != 3 or \
            not _finite3(torque[0], torque[1], torque[2]):
        torque = _floats(torque, 3, "torque_nm")
    mode = result[2]
    if type(mode) is not int or not 0 <= mode < N_MODES:
        mode = mode_index(mode)
    if len(result) == 3:
        return throttle, torque, mode, None, 0
    nav = result[3]
    if nav is not None:
        kind = type(nav)
        if kind is not tuple and kind is not list or len(nav) != 7 or \
                not _finite3(nav[0], nav[1], nav[2]) or \
                not _finite3(nav[3], nav[4], nav[5]) or not _finite3(nav[6], 0.0, 0.0):
            nav = _floats(nav, 7, "nav")
    flags = result[4]
    if type(flags) is not int or flags < 0 or flags >> 31:    # (no big-integer compare)
        flags = _int(flags, "flags", FLAGS_LIMIT)
    return throttle, torque, mode, nav, flags


def _finite3(a, b, c):
    """True if a, b and c are finite floats (NaN - NaN and inf - inf are NaN)."""
    return type(a) is float and type(b) is float and type(c) is float and \
        a - a == 0.0 and b - b == 0.0 and c - c == 0.0


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
