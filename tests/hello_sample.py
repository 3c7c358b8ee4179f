"""A valid HELLO for tests that need one: the shared vectors' ``hello_minimal`` message.

    from hello_sample import RATES, CONFIG, HELLO_FIELDS
"""

import json
import pathlib
import struct


def _value(v):
    if isinstance(v, dict):
        if "bits" in v:
            return struct.unpack(">d", bytes.fromhex(v["bits"]))[0]
        if "map" in v:
            return {k: _value(x) for k, x in v["map"]}
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


_VECTORS = json.loads((pathlib.Path(__file__).parent / "vectors" / "wire_vectors.json")
                      .read_text(encoding="utf-8"))
HELLO_FIELDS = _value(next(m["fields"] for m in _VECTORS["messages"]
                           if m["name"] == "hello_minimal"))
_, _, RATES, CONFIG = HELLO_FIELDS
