"""A job for the board's wire codec, run the same way under CPython and MicroPython.

tests/test_pico_wire.py appends ``JOB = "<hex of UTF-8 JSON>"`` and runs this text with
``wire`` importable: in-process under CPython, and inside the virtual board's MicroPython.
It prints one line ``RESULT <json>``: what the board's codec made of each case, with
floats as the hex of their IEEE-754 binary64 bits so both sides compare bit for bit.
MicroPython-safe: no f-strings, no bytes.hex.
"""

import binascii
import json
import struct

try:
    import wire
except ImportError:
    from hil.pico import wire


def hx(b):
    return binascii.hexlify(bytes(b)).decode()


def unhx(s):
    return binascii.unhexlify(s)


def dump(v):
    """A JSON value for v: floats by their bits, maps as [key, value] pairs in order."""
    t = type(v)
    if t is float:
        return {"f": hx(struct.pack(">d", v))}
    if t is list or t is tuple:
        return [dump(x) for x in v]
    if isinstance(v, dict):
        return {"m": [[k, dump(v[k])] for k in v]}
    if t is bytes:
        return {"bin": hx(v)}
    return v


def error_of(fn, *args):
    try:
        fn(*args)
    except wire.WireError as e:
        return str(e) or type(e).__name__
    return None


def run_case(case):
    op = case["op"]
    if op == "message":
        payload = unhx(case["payload"])
        try:
            type_id, fields = wire.decode_message(payload)
        except wire.WireError as e:
            return {"error": str(e) or type(e).__name__,
                    "version_mismatch": isinstance(e, wire.VersionMismatch)}
        again = wire.encode_message(type_id, fields)
        return {"type": type_id, "fields": dump(fields), "reencoded": hx(again),
                "frame": hx(wire.frame(again))}
    if op == "value":
        obj = wire.unpack(unhx(case["payload"]))
        return {"value": dump(obj), "packed": hx(wire.pack(obj))}
    if op == "bad_value":
        return {"error": error_of(wire.unpack, unhx(case["payload"]))}
    if op == "cobs":
        enc = wire.cobs_encode(unhx(case["data"]))
        return {"enc": hx(enc), "dec": hx(wire.cobs_decode(enc))}
    if op == "bad_cobs":
        return {"error": error_of(wire.cobs_decode, unhx(case["data"]))}
    if op == "crc":
        data = unhx(case["data"])
        return {"crc": wire.crc32(data), "crc_py": wire.crc32_py(data),
                "le": hx(struct.pack("<I", wire.crc32(data)))}
    if op == "frame":
        return {"frame": hx(wire.frame(unhx(case["payload"])))}
    if op == "stream":
        d = wire.Deframer()
        data = unhx(case["input"])
        out = []
        if case.get("bytewise"):
            for i in range(len(data)):
                out.extend(d.feed(data[i:i + 1]))
        else:
            step = case.get("chunk") or len(data) or 1
            for i in range(0, len(data), step):
                out.extend(d.feed(data[i:i + step]))
        return {"payloads": [hx(p) for p in out], "stats": d.stats}
    return {"error": "unknown op " + op}


def main(job_hex):
    job = json.loads(unhx(job_hex).decode("utf-8"))
    import sys
    impl = sys.implementation
    results = {"runtime": impl.name, "crc_from_binascii": wire._crc32 is not None,
               "cases": [run_case(case) for case in job]}
    print("RESULT " + json.dumps(results))
