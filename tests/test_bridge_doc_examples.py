"""docs/protocol.md's byte examples must be what the codec produces today."""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root, not installed

import pytest

from bridge import protocol as p
from bridge.codec import decode, encode

DOC = (ROOT / "docs" / "protocol.md").read_text()
TYPE_IDS = {name: type_id for type_id, name in p.NAMES.items()}


def _examples():
    """(heading, fields JSON, hex text) for each ```json block followed by a ```hex block."""
    blocks = list(re.finditer(r"^```(\w*)\n(.*?)^```", DOC, re.S | re.M))
    found = []
    for first, second in zip(blocks, blocks[1:]):
        if first.group(1) == "json" and second.group(1) == "hex":
            heading = re.findall(r"^#+ (.*)$", DOC[:first.start()], re.M)[-1]
            found.append((heading, first.group(2), second.group(2)))
    return found


EXAMPLES = _examples()


def _hex_bytes(text: str) -> bytes:
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def test_the_doc_has_an_example_of_each_message_but_hello():
    names = {json.loads(fields)["type"] for _, fields, _ in EXAMPLES}
    assert names == set(p.NAMES.values()) - {"hello"}


@pytest.mark.parametrize("heading, fields_json, hex_text", EXAMPLES,
                         ids=[heading for heading, _, _ in EXAMPLES])
def test_example_bytes_match_the_codec(heading, fields_json, hex_text):
    example = json.loads(fields_json)
    type_id = TYPE_IDS[example["type"]]
    payload = encode(type_id, example["fields"])
    assert _hex_bytes(hex_text).hex(" ") == payload.hex(" ")
    assert decode(payload).fields == example["fields"]
    size = re.search(r"\((\d+) bytes\)", heading)
    assert size and int(size.group(1)) == len(payload), "byte count in the heading"


def test_protocol_version_and_limits_in_the_doc():
    assert f"**Protocol version: {p.PROTOCOL_VERSION}**" in DOC
    assert f"**{p.MAX_PAYLOAD_BYTES}** bytes" in DOC
    for type_id, name in p.NAMES.items():
        assert f"| {type_id} | `{name.upper()}` |" in DOC
        section = DOC.split(f"### {type_id} `{name.upper()}`")[1].split("\n#")[0]
        rows = re.findall(r"^\| (\d+) \| `(\w+)` \| (\w+) \|", section, re.M)
        assert rows == [(str(k), field, kind)
                        for k, (field, kind) in enumerate(p.LAYOUTS[type_id], start=1)], name


def _schema_rows(schema, prefix=""):
    rows = []
    for key, check, required in schema:
        nested = type(check) is tuple
        rows.append((prefix + key, "map" if nested else check, "yes" if required else "no"))
        if nested:
            rows += _schema_rows(check, prefix + key + ".")
    return rows


def test_the_hello_schemas_in_the_doc_are_protocol_py():
    section = DOC.split("### 1 `HELLO`")[1].split("### 2 `HELLO_ACK`")[0]
    rates, config = section.split("`rates`:\n")[1].split("`config` (built")
    row = r"^\| `([\w.]+)` \| (\w+) \| (yes|no) \|"
    assert re.findall(row, rates, re.M) == _schema_rows(p.RATES_SCHEMA)
    assert re.findall(row, config, re.M) == _schema_rows(p.CONFIG_SCHEMA)
    checks = re.findall(r"^\| `(\w+)` \| ([^|]+?) \|$", section, re.M)
    assert [name for name, _ in checks] == list(p.SCHEMA_CHECKS)
