"""The board's wire codec: msgpack subset, COBS framing and CRC-32 (MicroPython and CPython).

Pure code, no I/O, so the same module runs on a Pico, in the virtual board (MicroPython in
WebAssembly) and under CPython in the tests, which compare it byte for byte with the host's
codec (msgpack-python, the ``cobs`` package, ``zlib.crc32``).

Framing on a byte stream (docs/protocol.md)::

    frame = COBS(payload + CRC32_IEEE(payload) as 4 bytes little-endian) + b"\\x00"

The payload is one protocol message: the msgpack array ``[PROTOCOL_VERSION, type_id,
*fields]``. :func:`pack` writes the smallest encoding msgpack-python writes (floats always as
float64 ``cb``, so a board with single-precision floats is read the same way by the host);
:func:`unpack` reads every form the host can send.
"""

import struct

from bridge import protocol

try:  # MicroPython builds a dict-ordered map only with OrderedDict; CPython dicts keep order.
    from collections import OrderedDict as _Map
except ImportError:  # a MicroPython built without it: maps lose their order, nothing else
    _Map = dict

try:
    from binascii import crc32 as _crc32
except ImportError:
    _crc32 = None

MAX_PAYLOAD_BYTES = protocol.MAX_PAYLOAD_BYTES
CRC_BYTES = 4
MAX_BODY_BYTES = MAX_PAYLOAD_BYTES + CRC_BYTES               # longest COBS input
MAX_FRAME_BYTES = MAX_BODY_BYTES + (MAX_BODY_BYTES + 253) // 254 + 1   # on the wire, with 00
MAX_DEPTH = 16                # nesting of arrays/maps accepted when decoding


class WireError(ValueError):
    """Bytes that are not what the codec accepts; the text says what was wrong."""


# --- CRC-32 (IEEE 802.3, as zlib.crc32) ------------------------------------------------
def _make_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = None


def crc32_py(data, crc=0):
    """Table-driven CRC-32 in plain Python: the fallback when binascii has no crc32."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _make_table()
    table = _TABLE
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32(data):
    """CRC-32 of ``data`` as an unsigned 32-bit integer (equal to ``zlib.crc32``)."""
    if _crc32 is not None:
        return _crc32(data) & 0xFFFFFFFF
    return crc32_py(data)


# --- COBS (Cheshire and Baker; byte for byte as the ``cobs`` package) -------------------
def cobs_encode(data):
    """COBS-encode ``data``: the result has no zero byte (the caller appends the delimiter)."""
    out = bytearray()
    data = bytes(data)
    segments = data.split(b"\x00")
    last = len(segments) - 1
    for k in range(len(segments)):
        seg = segments[k]
        n = len(seg)
        pos = 0
        while n - pos >= 254:          # a full block: code 0xFF, no zero implied
            out.append(0xFF)
            out.extend(seg[pos:pos + 254])
            pos += 254
        if k == last and pos == n and pos > 0:
            break                      # the data ended right after a full block
        out.append(n - pos + 1)        # the code implies the zero that followed the segment
        out.extend(seg[pos:])
    return bytes(out)


def cobs_decode(data):
    """Undo :func:`cobs_encode`; raises WireError on a zero byte or a code past the end."""
    out = bytearray()
    data = bytes(data)
    n = len(data)
    i = 0
    while i < n:
        code = data[i]
        if code == 0:
            raise WireError("zero byte in COBS data")
        end = i + code
        if end > n:
            raise WireError("COBS code runs past the end")
        block = data[i + 1:end]
        if b"\x00" in block:
            raise WireError("zero byte in COBS data")
        out.extend(block)
        i = end
        if i < n and code < 0xFF:
            out.append(0)
    return bytes(out)


def frame(payload):
    """One framed payload, delimiter included: COBS(payload + CRC32 LE) + b"\\x00"."""
    body = bytes(payload) + struct.pack("<I", crc32(payload))
    return cobs_encode(body) + b"\x00"


class Deframer:
    """Bytes in, payloads out: splits on 0x00, checks COBS, length and CRC (as the host's
    bridge.framing.FrameDecoder, with the same counters).

    Each candidate between two delimiters is: empty (ignored), not valid COBS
    (``cobs_errors``), shorter than 5 bytes decoded (``runts``), longer than
    MAX_PAYLOAD_BYTES + 4 decoded (``oversize``), of a wrong CRC (``crc_errors``) or good
    (``frames_ok``). More than MAX_FRAME_BYTES without a delimiter is dropped and counted
    once as ``oversize``, and so is the rest up to the next delimiter: memory stays bounded.
    ``bytes_in`` counts every byte fed, ``bytes_discarded`` the bytes of rejected candidates.
    """

    def __init__(self):
        self.buf = bytearray()
        self.skipping = False
        self.stats = {"bytes_in": 0, "bytes_discarded": 0, "frames_ok": 0, "cobs_errors": 0,
                      "runts": 0, "oversize": 0, "crc_errors": 0}

    def pending(self):
        """Bytes held for a frame whose delimiter has not come yet."""
        return len(self.buf)

    def reset(self):
        """Drop a partial frame (the host went away mid-frame)."""
        self.stats["bytes_discarded"] += len(self.buf)
        self.buf = bytearray()
        self.skipping = False

    def feed(self, data):
        """Take bytes from the stream; return the list of good payloads they completed."""
        out = []
        data = bytes(data)
        n = len(data)
        self.stats["bytes_in"] += n
        start = 0
        while True:
            z = data.find(b"\x00", start)
            end = n if z < 0 else z
            if end > start:
                self._hold(data, start, end)
            if z < 0:
                return out
            if self.skipping:
                self.skipping = False      # the oversize candidate ends here (counted)
            elif self.buf:
                payload = self._check(bytes(self.buf))
                self.buf = bytearray()
                if payload is not None:
                    out.append(payload)
            start = z + 1

    def _hold(self, data, start, end):
        stats = self.stats
        if self.skipping:
            stats["bytes_discarded"] += end - start
        elif len(self.buf) + end - start <= MAX_FRAME_BYTES:
            self.buf.extend(data[start:end])
        else:
            stats["oversize"] += 1
            stats["bytes_discarded"] += len(self.buf) + end - start
            self.buf = bytearray()
            self.skipping = True

    def _check(self, chunk):
        stats = self.stats
        kind = "frames_ok"
        try:
            body = cobs_decode(chunk)
        except WireError:
            kind = "cobs_errors"
        else:
            if len(body) <= CRC_BYTES:
                kind = "runts"
            elif len(body) > MAX_BODY_BYTES:
                kind = "oversize"
            elif struct.unpack("<I", body[-CRC_BYTES:])[0] != crc32(body[:-CRC_BYTES]):
                kind = "crc_errors"
        stats[kind] += 1
        if kind == "frames_ok":
            return body[:-CRC_BYTES]
        stats["bytes_discarded"] += len(chunk)
        return None


# --- msgpack: the subset the protocol uses, smallest forms as msgpack-python -----------
def pack(obj):
    """msgpack bytes of ``obj`` (None, bool, int, float, str, bytes, list/tuple, dict)."""
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack_len(out, n, fix_base, fix_max, code8, code16, code32):
    """A length header in its smallest form: fix (if ``fix_max`` >= 0), 8 bit (if
    ``code8``), 16 or 32 bit."""
    if n <= fix_max:
        out.append(fix_base | n)
    elif code8 is not None and n <= 0xFF:
        out.append(code8)
        out.append(n)
    elif n <= 0xFFFF:
        out.append(code16)
        out.extend(struct.pack(">H", n))
    elif n <= 0xFFFFFFFF:
        out.append(code32)
        out.extend(struct.pack(">I", n))
    else:
        raise WireError("too long for msgpack: %d" % n)


def _pack(obj, out):
    t = type(obj)
    if t is float:
        out.append(0xCB)
        out.extend(struct.pack(">d", obj))
    elif obj is None:
        out.append(0xC0)
    elif t is bool:                    # before int: CPython's bool is an int
        out.append(0xC3 if obj else 0xC2)
    elif t is int:
        _pack_int(obj, out)
    elif t is str:
        b = obj.encode("utf-8")
        _pack_len(out, len(b), 0xA0, 31, 0xD9, 0xDA, 0xDB)
        out.extend(b)
    elif t is list or t is tuple:
        _pack_len(out, len(obj), 0x90, 15, None, 0xDC, 0xDD)
        for x in obj:
            _pack(x, out)
    elif isinstance(obj, dict):
        _pack_len(out, len(obj), 0x80, 15, None, 0xDE, 0xDF)
        for k in obj:
            _pack(k, out)
            _pack(obj[k], out)
    elif t is bytes or t is bytearray:
        _pack_len(out, len(obj), 0, -1, 0xC4, 0xC5, 0xC6)
        out.extend(obj)
    else:
        raise WireError("cannot pack %s" % t.__name__)


def _pack_int(n, out):
    if n >= 0:
        if n < 0x80:
            out.append(n)
        elif n <= 0xFF:
            out.append(0xCC)
            out.append(n)
        elif n <= 0xFFFF:
            out.append(0xCD)
            out.extend(struct.pack(">H", n))
        elif n <= 0xFFFFFFFF:
            out.append(0xCE)
            out.extend(struct.pack(">I", n))
        elif n <= 0xFFFFFFFFFFFFFFFF:
            out.append(0xCF)
            out.extend(struct.pack(">Q", n))
        else:
            raise WireError("integer too large for msgpack: %d" % n)
    elif n >= -32:
        out.append(n & 0xFF)
    elif n >= -0x80:
        out.append(0xD0)
        out.extend(struct.pack(">b", n))
    elif n >= -0x8000:
        out.append(0xD1)
        out.extend(struct.pack(">h", n))
    elif n >= -0x80000000:
        out.append(0xD2)
        out.extend(struct.pack(">i", n))
    elif n >= -0x8000000000000000:
        out.append(0xD3)
        out.extend(struct.pack(">q", n))
    else:
        raise WireError("integer too small for msgpack: %d" % n)


def unpack(data):
    """Decode exactly one msgpack object from ``data``; raises WireError otherwise."""
    data = bytes(data)
    try:
        obj, i = _unpack(data, 0, 0)
    except IndexError:
        raise WireError("msgpack data ends early")
    if i != len(data):
        raise WireError("%d bytes after the msgpack object" % (len(data) - i))
    return obj


def _take(b, i, n):
    j = i + n
    if j > len(b):
        raise WireError("msgpack data ends early")
    return b[i:j], j


def _unpack_seq(b, i, n, depth, is_map):
    # every element takes at least one byte: refuse a count the data cannot hold
    if n > len(b) - i:
        raise WireError("msgpack data ends early")
    if depth >= MAX_DEPTH:
        raise WireError("msgpack nesting deeper than %d" % MAX_DEPTH)
    if is_map:
        m = _Map()
        for _ in range(n):
            k, i = _unpack(b, i, depth + 1)
            if type(k) is not str:
                raise WireError("map key is not a string")
            v, i = _unpack(b, i, depth + 1)
            m[k] = v
        return m, i
    lst = []
    for _ in range(n):
        v, i = _unpack(b, i, depth + 1)
        lst.append(v)
    return lst, i


def _unpack(b, i, depth):
    c = b[i]
    i += 1
    if c < 0x80:
        return c, i
    if c >= 0xE0:
        return c - 0x100, i
    if c >= 0xA0 and c <= 0xBF:
        s, i = _take(b, i, c & 0x1F)
        return _str(s), i
    if c >= 0x90 and c <= 0x9F:
        return _unpack_seq(b, i, c & 0x0F, depth, False)
    if c <= 0x8F:
        return _unpack_seq(b, i, c & 0x0F, depth, True)
    if c == 0xCB:
        s, i = _take(b, i, 8)
        return struct.unpack(">d", s)[0], i
    if c == 0xC0:
        return None, i
    if c == 0xC2:
        return False, i
    if c == 0xC3:
        return True, i
    if c == 0xCA:
        s, i = _take(b, i, 4)
        return struct.unpack(">f", s)[0], i
    if c >= 0xCC and c <= 0xD3:
        fmt, size = _INTS[c - 0xCC]
        s, i = _take(b, i, size)
        return struct.unpack(fmt, s)[0], i
    if c >= 0xD9 and c <= 0xDB:
        size = 1 << (c - 0xD9)
        s, i = _take(b, i, size)
        s, i = _take(b, i, _len(s))
        return _str(s), i
    if c >= 0xC4 and c <= 0xC6:
        size = 1 << (c - 0xC4)
        s, i = _take(b, i, size)
        s, i = _take(b, i, _len(s))
        return s, i
    if c == 0xDC or c == 0xDD:
        s, i = _take(b, i, 2 if c == 0xDC else 4)
        return _unpack_seq(b, i, _len(s), depth, False)
    if c == 0xDE or c == 0xDF:
        s, i = _take(b, i, 2 if c == 0xDE else 4)
        return _unpack_seq(b, i, _len(s), depth, True)
    raise WireError("msgpack type 0x%02x is not used by the protocol" % c)


_INTS = ((">B", 1), (">H", 2), (">I", 4), (">Q", 8), (">b", 1), (">h", 2), (">i", 4), (">q", 8))


def _len(s):
    n = 0
    for x in s:
        n = (n << 8) | x
    return n


def _str(s):
    try:
        return str(s, "utf-8")
    except (UnicodeError, ValueError):
        raise WireError("string is not UTF-8")


# --- messages: [PROTOCOL_VERSION, type_id, *fields] per bridge/protocol.py LAYOUTS -------
# Each kind is checked over its whole range, as the host's bridge/kinds.py checks it.
def _finite(x):
    return x - x == 0.0           # False for inf and nan (MicroPython may lack math.isfinite)


def _float(v):
    t = type(v)
    if t is float:
        if _finite(v):
            return v
        raise WireError("expected a finite float, got %r" % v)
    if t is int:
        return float(v)
    raise WireError("expected a float, got %s" % t.__name__)


def _int(v, lo, hi, what):
    if type(v) is not int:
        raise WireError("%s: expected an integer, got %s" % (what, type(v).__name__))
    if v < lo or v > hi:
        raise WireError("%s %d is outside %d..%d" % (what, v, lo, hi))
    return v


def _time(v, what):
    return _int(v, 0, protocol.T_US_MAX, what)


def _array(v, n, what):
    if (type(v) is not list and type(v) is not tuple) or (n is not None and len(v) != n):
        raise WireError("expected %s" % what)
    return v


def _floats(v, n):
    return [_float(x) for x in _array(v, n, "an array of %d floats" % n)]


def _imu(v):
    out = []
    last = -1
    for s in _array(v, None, "an array of IMU samples"):
        s = _array(s, 7, "IMU sample: an array of 7")
        t = _time(s[0], "IMU sample t_us")
        if t <= last:
            raise WireError("IMU sample t_us %d is not after the previous sample's %d" % (t, last))
        last = t
        out.append([t, _float(s[1]), _float(s[2]), _float(s[3]), _float(s[4]), _float(s[5]),
                    _float(s[6])])
    return out


def _alt(v):
    if v is None:
        return None
    _array(v, 3, "nil or an altimeter sample [t_us, range_m, valid]")
    if type(v[2]) is not bool:
        raise WireError("altimeter valid must be a boolean")
    return [_time(v[0], "altimeter t_us"), _float(v[1]), v[2]]


def _vel(v):
    if v is None:
        return None
    _array(v, 8, "nil or a velocimeter sample of 8 numbers")
    mask = _int(v[7], 0, (1 << protocol.VEL_BEAMS) - 1, "velocimeter valid_mask")
    return [_time(v[0], "velocimeter t_us")] + [_float(v[k]) for k in range(1, 7)] + [mask]


def _att(v):
    if v is None:
        return None
    _array(v, 6, "nil or a star tracker sample [t_us, qw, qx, qy, qz, valid]")
    if type(v[5]) is not bool:
        raise WireError("star tracker valid must be a boolean")
    out = [_time(v[0], "star tracker t_us"), _float(v[1]), _float(v[2]), _float(v[3]),
           _float(v[4]), v[5]]
    if out[1] == 0.0 and out[2] == 0.0 and out[3] == 0.0 and out[4] == 0.0:
        raise WireError("star tracker quaternion [qw, qx, qy, qz] is all zero")
    return out


def _map(v):
    if not isinstance(v, dict):
        raise WireError("expected a map, got %s" % type(v).__name__)
    return v


def _num(x):
    t = type(x)
    return (t is float and _finite(x)) or t is int


def _nums(x, n):
    if type(x) is not list or len(x) != n:
        return False
    for e in x:
        if not _num(e):
            return False
    return True


def _nonzero(x):
    for e in x:
        if e != 0:
            return True
    return False


def _schema_ok(check, x):
    """One check of protocol.SCHEMA_CHECKS (as bridge/kinds.py)."""
    if check == "real":
        return _num(x)
    if check == "pos":
        return _num(x) and x > 0
    if check == "nonneg":
        return _num(x) and x >= 0
    if check == "unit":
        return _num(x) and 0 <= x <= 1
    if check == "time":
        return type(x) is int and 0 <= x <= protocol.T_US_MAX
    if check == "vec3":
        return _nums(x, 3)
    if check == "pos3":
        return _nums(x, 3) and min(x) > 0
    if check == "nonneg3":
        return _nums(x, 3) and min(x) >= 0
    if check == "dir3":
        return _nums(x, 3) and _nonzero(x)
    if check == "dirs3":
        if type(x) is not list or len(x) != 3:
            return False
        for d in x:
            if not (_nums(d, 3) and _nonzero(d)):
                return False
        return True
    if check == "quat":
        return _nums(x, 4) and _nonzero(x)
    if check == "map":
        return isinstance(x, dict)    # keys are strings: unpack refuses others
    raise WireError("unknown schema check %r" % check)


def check_schema(v, schema, path=""):
    """Check a map against a schema of protocol.py (RATES_SCHEMA, CONFIG_SCHEMA)."""
    _map(v)
    for key, check, required in schema:
        where = path + key
        if key not in v:
            if required:
                raise WireError("%s: missing" % where)
            continue
        x = v[key]
        if type(check) is tuple:
            if not isinstance(x, dict):
                raise WireError("%s: expected a map" % where)
            check_schema(x, check, where + ".")
        elif not _schema_ok(check, x):
            raise WireError("%s: expected %s" % (where, protocol.SCHEMA_CHECKS[check]))
    return v


def _counts(v):
    for k in _map(v):
        _int(v[k], 0, protocol.COUNT_MAX, "counter " + k)
    return v


def convert(kind, v):
    """Check one field value against its kind (bridge/protocol.py) and normalise it:
    integers where floats are due become floats, tuples become lists."""
    if kind == "f":
        return _float(v)
    if kind == "u":
        return _int(v, 0, protocol.U32_MAX, "unsigned 32-bit integer")
    if kind == "t":
        return _time(v, "time")
    if kind == "mode":
        return _int(v, 0, len(protocol.MODES) - 1, "mode")
    if kind == "f3":
        return _floats(v, 3)
    if kind == "nav":
        return None if v is None else _floats(v, 7)
    if kind == "imu":
        return _imu(v)
    if kind == "alt":
        return _alt(v)
    if kind == "vel":
        return _vel(v)
    if kind == "att":
        return _att(v)
    if kind == "s":
        if type(v) is not str:
            raise WireError("expected a string, got %s" % type(v).__name__)
        return v
    if kind == "m":
        return _map(v)
    if kind == "rates":
        return check_schema(v, protocol.RATES_SCHEMA)
    if kind == "config":
        return check_schema(v, protocol.CONFIG_SCHEMA)
    if kind == "counts":
        return _counts(v)
    raise WireError("unknown field kind %r" % kind)


def _check_role(type_id, fields):
    role = protocol.ROLES.get(type_id)
    if role is not None and fields[0] != role:
        raise WireError('%s field role: must be "%s", got %r'
                        % (protocol.NAMES[type_id], role, fields[0]))


def encode_message(type_id, fields, version=None):
    """Payload of one message; ``fields`` in layout order. ``version`` defaults to ours
    (an END to a peer of another version is written in the peer's version)."""
    layout = protocol.LAYOUTS.get(type_id)
    if layout is None:
        raise WireError("unknown message type id %r" % (type_id,))
    if len(fields) != len(layout):
        raise WireError("%s: expected %d fields, got %d"
                        % (protocol.NAMES[type_id], len(layout), len(fields)))
    out = [protocol.PROTOCOL_VERSION if version is None else version, type_id]
    for k in range(len(layout)):
        try:
            out.append(convert(layout[k][1], fields[k]))
        except WireError as e:
            raise WireError("%s field %s: %s" % (protocol.NAMES[type_id], layout[k][0], e))
    _check_role(type_id, out[2:])
    payload = pack(out)
    if len(payload) > protocol.MAX_PAYLOAD_BYTES:
        raise WireError("payload of %d bytes exceeds the limit of %d bytes"
                        % (len(payload), protocol.MAX_PAYLOAD_BYTES))
    return payload


class VersionMismatch(WireError):
    """A message of another protocol version; ``got`` is its version."""

    def __init__(self, got):
        super().__init__("protocol version %r" % (got,))
        self.got = got


def decode_message(payload):
    """(type_id, [fields]) of one payload, checked as the host checks it: one msgpack array,
    version first (VersionMismatch), then type id, field count and each field's kind."""
    if len(payload) > protocol.MAX_PAYLOAD_BYTES:
        raise WireError("payload of %d bytes exceeds the limit" % len(payload))
    obj = unpack(payload)
    if type(obj) is not list or len(obj) < 2:
        raise WireError("expected an array [version, type_id, ...]")
    if type(obj[0]) is not int or obj[0] != protocol.PROTOCOL_VERSION:
        raise VersionMismatch(obj[0])
    type_id = obj[1]
    layout = protocol.LAYOUTS.get(type_id) if type(type_id) is int else None
    if layout is None:
        raise WireError("unknown message type id %r" % (type_id,))
    if len(obj) - 2 != len(layout):
        raise WireError("malformed %s message: expected %d fields, got %d"
                        % (protocol.NAMES[type_id], len(layout), len(obj) - 2))
    fields = []
    for k in range(len(layout)):
        try:
            fields.append(convert(layout[k][1], obj[k + 2]))
        except WireError as e:
            raise WireError('malformed %s message, field "%s": %s'
                            % (protocol.NAMES[type_id], layout[k][0], e))
    _check_role(type_id, fields)
    return type_id, fields
