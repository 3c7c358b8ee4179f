#!/usr/bin/env python3
"""Generate the C library's protocol table from bridge/protocol.py (the one table).

    python3 bridge/c/gen_protocol.py           # (re)write the two generated files
    python3 bridge/c/gen_protocol.py --check   # exit 1 if they differ from the table

Writes ``include/fsil/protocol.h`` (version, limits, message ids, modes, flags, one C
struct per message with a member per field) and ``src/protocol_tables.c`` (each message's
field layout: name, kind, offset in its struct; and the HELLO schemas RATES_SCHEMA and
CONFIG_SCHEMA as key tables), which the generic C codec walks. Both
files are committed so that a board project (Pico SDK, CMake) needs no Python; ``make``
and the tests run ``--check``, so a change of the table cannot silently diverge from C.

Only the standard library is used: bridge/protocol.py is executed on its own (it imports
nothing), so the system python3 is enough.
"""

from __future__ import annotations

import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROTOCOL_PY = ROOT / "bridge" / "protocol.py"
CODEC_PY = ROOT / "bridge" / "codec.py"
HEADER = HERE / "include" / "fsil" / "protocol.h"
TABLES = HERE / "src" / "protocol_tables.c"

# Field kind of the table -> (C codec kind, C member declaration with {name}).
# A kind missing here stops the generator: the C codec must learn it first.
KINDS = {
    "u": ("FSIL_KIND_U32", "uint32_t {name};"),
    "t": ("FSIL_KIND_T", "int64_t {name};"),
    "mode": ("FSIL_KIND_MODE", "uint32_t {name};"),
    "f": ("FSIL_KIND_F", "double {name};"),
    "s": ("FSIL_KIND_S", "fsil_str_t {name};"),
    "m": ("FSIL_KIND_M", "fsil_map_t {name};"),
    "rates": ("FSIL_KIND_M", "fsil_map_t {name};"),
    "config": ("FSIL_KIND_M", "fsil_map_t {name};"),
    "counts": ("FSIL_KIND_COUNTS", "fsil_map_t {name};"),
    "f3": ("FSIL_KIND_F3", "double {name}[3];"),
    "nav": ("FSIL_KIND_NAV", "fsil_nav_t {name};"),
    "imu": ("FSIL_KIND_IMU", "fsil_imu_t {name};"),
    "alt": ("FSIL_KIND_ALT", "fsil_alt_t {name};"),
    "vel": ("FSIL_KIND_VEL", "fsil_vel_t {name};"),
    "att": ("FSIL_KIND_ATT", "fsil_att_t {name};"),
}

# Field kinds whose map is checked against a schema of the table (kind -> schema name).
SCHEMA_OF_KIND = {"rates": "RATES_SCHEMA", "config": "CONFIG_SCHEMA"}

# The schema checks the C codec implements (src/codec.c, check_value), by the table's name.
# The table's SCHEMA_CHECKS must name exactly these: a new check stops the generator until
# the C codec learns it; the descriptions themselves are generated from the table.
CHECKS = ("real", "pos", "nonneg", "unit", "time", "vec3", "pos3", "nonneg3", "dir3", "dirs3",
          "quat", "map")


def load_table() -> dict:
    """Execute bridge/protocol.py alone and return its names."""
    names: dict = {"__name__": "fsil_protocol_table"}
    exec(compile(PROTOCOL_PY.read_text(), str(PROTOCOL_PY), "exec"), names)
    return names


def max_imu_samples(table: dict) -> int:
    """The most IMU samples one FRAME carries (from the table, else bridge/codec.py)."""
    for name in ("MAX_IMU_SAMPLES_PER_FRAME", "MAX_IMU_SAMPLES"):
        if isinstance(table.get(name), int):
            return table[name]
    found = re.search(r"^MAX_IMU_SAMPLES_PER_FRAME\s*=\s*(\d+)", CODEC_PY.read_text(), re.M)
    if not found:
        raise SystemExit("gen_protocol: MAX_IMU_SAMPLES_PER_FRAME not found in the table or codec")
    return int(found.group(1))


def c_ident(text: str) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]", "_", text)
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_]*", ident):
        raise SystemExit(f"gen_protocol: {text!r} cannot be a C identifier")
    return ident


def messages(table: dict) -> list[tuple[int, str, tuple]]:
    """(type id, name, layout) in id order."""
    out = []
    for type_id in sorted(table["LAYOUTS"]):
        name = table["NAMES"][type_id]
        layout = table["LAYOUTS"][type_id]
        for field, kind in layout:
            if kind not in KINDS:
                raise SystemExit(f"gen_protocol: {name}.{field} has kind {kind!r}, which the C "
                                 f"codec does not know: add it to KINDS and to src/codec.c")
        out.append((type_id, name, layout))
    return out


def flags(table: dict) -> list[tuple[str, int]]:
    return sorted(((k, v) for k, v in table.items() if k.startswith("FLAG_") and isinstance(v, int)),
                  key=lambda kv: kv[1])


def schema_checks(table: dict) -> dict[str, str]:
    """SCHEMA_CHECKS of the table, refused unless the C codec knows exactly these checks."""
    checks = table["SCHEMA_CHECKS"]
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise SystemExit(f"gen_protocol: schema check(s) {unknown} of bridge/protocol.py are "
                         f"unknown to the C codec: add them to CHECKS and to src/codec.c")
    gone = sorted(set(CHECKS) - set(checks))
    if gone:
        raise SystemExit(f"gen_protocol: CHECKS lists {gone}, no longer in SCHEMA_CHECKS")
    return checks


def schema_depth(schema: tuple) -> int:
    """Nesting depth of a schema: 1 for a flat one."""
    return 1 + max((schema_depth(check) for _, check, _ in schema if type(check) is tuple),
                   default=0)


def c_str(text: str) -> str:
    """A C string literal of printable ASCII text."""
    if not all(" " <= c <= "~" for c in text):
        raise SystemExit(f"gen_protocol: {text!r} is not printable ASCII")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_schema(table: dict, schema: tuple, ident: str, out: list[str],
                  top: bool = True) -> None:
    """Emit ``ident`` (an fsil_schema_t) and its nested schemas, innermost first."""
    checks = schema_checks(table)
    rows = []
    for key, check, required in schema:
        c_required = "true" if required else "false"
        if type(check) is tuple:
            nested = f"{ident}_{c_ident(key)}"
            render_schema(table, check, nested, out, top=False)
            rows.append(f"    {{{c_str(key)}, FSIL_CHECK_NESTED, {c_required}, &{nested}}},")
        elif check in checks:
            rows.append(f"    {{{c_str(key)}, FSIL_CHECK_{check.upper()}, {c_required}, NULL}},")
        else:
            raise SystemExit(f"gen_protocol: schema key {key!r} has check {check!r}, "
                             f"not one of SCHEMA_CHECKS")
    static = "" if top else "static "
    out.append(f"static const fsil_schema_key_t {ident}_keys[{len(rows)}] = {{")
    out += rows
    out.append("};")
    out.append(f"{static}const fsil_schema_t {ident} = {{{len(rows)}, {ident}_keys}};")


def schemas(table: dict) -> list[tuple[str, tuple]]:
    """(C name, schema) of every schema the layouts use, in SCHEMA_OF_KIND order."""
    used = {kind for layout in table["LAYOUTS"].values() for _, kind in layout}
    return [(f"fsil_{name.lower()}", table[name]) for kind, name in SCHEMA_OF_KIND.items()
            if kind in used]


def limits(table: dict) -> list[tuple[str, int]]:
    """Other integer constants of the table (limits, widths), in name order."""
    ids = {name.upper() for name in table["NAMES"].values()}
    skip = {"PROTOCOL_VERSION", "MAX_PAYLOAD_BYTES"} | ids
    return [(key, value) for key, value in sorted(table.items())
            if key.isupper() and type(value) is int and key not in skip
            and not key.startswith("FLAG_")]


def render_header(table: dict) -> str:
    msgs = messages(table)
    payload = table["MAX_PAYLOAD_BYTES"]
    body = payload + 4
    frame = body + -(-body // 254) + 1
    lines = [
        "/* fsil wire protocol: GENERATED by bridge/c/gen_protocol.py from bridge/protocol.py.",
        " * Do not edit: change the table and run `make -C bridge/c generate`. */",
        "#ifndef FSIL_PROTOCOL_H",
        "#define FSIL_PROTOCOL_H",
        "",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"#define FSIL_PROTOCOL_VERSION {table['PROTOCOL_VERSION']}",
        f"#define FSIL_MAX_PAYLOAD_BYTES {payload}",
        "#define FSIL_CRC_BYTES 4",
        f"#define FSIL_MAX_BODY_BYTES {body}   /* payload + CRC: the longest COBS input */",
        f"#define FSIL_MAX_FRAME_BYTES {frame}  /* on the wire, delimiter included */",
        "#ifndef FSIL_MAX_IMU_SAMPLES",
        f"#define FSIL_MAX_IMU_SAMPLES {max_imu_samples(table)}  /* most IMU samples in one FRAME */",
        "#endif",
        "",
        "/* Message type ids. */",
    ]
    for type_id, name, _ in msgs:
        lines.append(f"#define FSIL_MSG_{c_ident(name).upper()} {type_id}")
    lines.append(f"#define FSIL_MSG_MAX_ID {max(t for t, _, _ in msgs)}")
    lines += ["", "/* Flight software modes (COMMAND.mode is the index). */"]
    modes = table["MODES"]
    for k, mode in enumerate(modes):
        lines.append(f"#define FSIL_MODE_{c_ident(mode).upper()} {k}")
    lines.append(f"#define FSIL_MODE_COUNT {len(modes)}")
    lines += ["", "/* COMMAND.flags bits. */"]
    for key, value in flags(table):
        lines.append(f"#define FSIL_{key} {value}u")
    extra = limits(table)
    if extra:
        lines += ["", "/* Other constants of the table. */"]
        for key, value in extra:
            lines.append(f"#define FSIL_{key} {value}u")
    lines += [
        "",
        "/* A string inside a received payload: not NUL-terminated, valid UTF-8. */",
        "typedef struct { const char *ptr; uint32_t len; } fsil_str_t;",
        "/* A map (string keys) inside a payload, as its msgpack bytes; read with fsil_map_*. */",
        "typedef struct { const uint8_t *ptr; uint32_t len; } fsil_map_t;",
        "/* One IMU sample: time (us, end of the interval), delta-v (m/s) and delta-angle (rad), body. */",
        "typedef struct { int64_t t_us; double dv[3]; double dth[3]; } fsil_imu_sample_t;",
        "typedef struct { uint32_t count; fsil_imu_sample_t s[FSIL_MAX_IMU_SAMPLES]; } fsil_imu_t;",
        "/* Altimeter sample, or none (present false). */",
        "typedef struct { bool present; int64_t t_us; double range_m; bool valid; } fsil_alt_t;",
        "/* Velocimeter sample, or none: line-of-sight rates and ranges of 3 beams, valid bits. */",
        "typedef struct { bool present; int64_t t_us; double vlos_mps[3]; double range_m[3];",
        "                 uint32_t valid_mask; } fsil_vel_t;",
        "/* Star tracker sample, or none: attitude body -> MCI as a quaternion [w, x, y, z] (not",
        " * all zero; [1, 0, 0, 0] when invalid), valid. */",
        "typedef struct { bool present; int64_t t_us; double q[4]; bool valid; } fsil_att_t;",
        "/* A navigation estimate: position (m, 3), velocity (m/s, 3), altitude (m); or nil. */",
        "typedef struct { bool present; double v[7]; } fsil_nav_t;",
        "",
        "/* One struct per message, a member per field in layout order. */",
    ]
    for type_id, name, layout in msgs:
        lines.append(f"typedef struct {{  /* {name} ({type_id}) */")
        for field, kind in layout:
            lines.append("    " + KINDS[kind][1].format(name=c_ident(field)))
        lines.append(f"}} fsil_{c_ident(name)}_t;")
    lines += ["", "/* Any decoded message: type is one of FSIL_MSG_*. */",
              "typedef struct {", "    uint32_t type;", "    union {"]
    for _, name, _ in msgs:
        lines.append(f"        fsil_{c_ident(name)}_t {c_ident(name)};")
    lines += ["    } u;", "} fsil_msg_t;", "",
              "/* Field kinds the codec knows. */", "typedef enum {"]
    codes = []
    for code, _ in KINDS.values():
        if code not in codes:
            codes.append(code)
    for k, code in enumerate(codes):
        lines.append(f"    {code} = {k + 1},")
    lines += ["} fsil_kind_t;", "",
              "/* HELLO contents: the checks of SCHEMA_CHECKS (fsil_check_text gives each one's",
              " * meaning), and schemas: (key, check, required) rows; a NESTED key's value must be",
              " * a map checked by its own schema. Unlisted keys pass unchecked. */",
              "typedef enum {"]
    for k, check in enumerate(schema_checks(table)):
        lines.append(f"    FSIL_CHECK_{check.upper()} = {k + 1},")
    lines.append(f"    FSIL_CHECK_NESTED = {len(schema_checks(table)) + 1}")
    depth = max((schema_depth(schema) for _, schema in schemas(table)), default=1)
    lines += ["} fsil_check_t;",
              "typedef struct fsil_schema fsil_schema_t;",
              "typedef struct { const char *key; fsil_check_t check; bool required;",
              "                 const fsil_schema_t *nested; } fsil_schema_key_t;",
              "struct fsil_schema { uint32_t count; const fsil_schema_key_t *keys; };",
              f"#define FSIL_SCHEMA_MAX_DEPTH {depth}  /* deepest nesting of the schemas */"]
    for ident, _ in schemas(table):
        lines.append(f"extern const fsil_schema_t {ident};")
    lines += ["/* What a check requires, in the table's words (\"a finite number > 0\"). */",
              "const char *fsil_check_text(fsil_check_t check);",
              "",
              "/* schema: the map must pass it (NULL: any map). */",
              "typedef struct { const char *name; fsil_kind_t kind; size_t offset;",
              "                 const fsil_schema_t *schema; } fsil_field_t;",
              "/* role: the string the message's role field must hold (NULL: no role field). */",
              "typedef struct { const char *name; uint32_t count; const fsil_field_t *fields;",
              "                 const char *role; size_t role_offset; } fsil_layout_t;",
              "",
              "/* Layout of message type_id, or NULL for an unknown id. */",
              "const fsil_layout_t *fsil_layout(uint32_t type_id);",
              "/* Name of message type_id (\"frame\"), or \"unknown\". */",
              "const char *fsil_msg_name(uint32_t type_id);",
              "/* Name of mode index (\"terminal\"), or \"unknown\". */",
              "const char *fsil_mode_name(uint32_t mode);",
              "", "#endif /* FSIL_PROTOCOL_H */", ""]
    return "\n".join(lines)


def render_tables(table: dict) -> str:
    msgs = messages(table)
    lines = [
        "/* fsil wire protocol layouts: GENERATED by bridge/c/gen_protocol.py from bridge/protocol.py.",
        " * Do not edit: change the table and run `make -C bridge/c generate`. */",
        '#include "fsil/protocol.h"',
        "",
    ]
    for ident, schema in schemas(table):
        render_schema(table, schema, ident, lines)
        lines.append("")
    lines.append("static const char *const check_texts[FSIL_CHECK_NESTED + 1] = {")
    for check, text in schema_checks(table).items():
        lines.append(f"    [FSIL_CHECK_{check.upper()}] = {c_str(text)},")
    lines += ['    [FSIL_CHECK_NESTED] = "a map",', "};", ""]
    for _, name, layout in msgs:
        ident = c_ident(name)
        lines.append(f"static const fsil_field_t fields_{ident}[{len(layout)}] = {{")
        for field, kind in layout:
            schema = f"&fsil_{SCHEMA_OF_KIND[kind].lower()}" if kind in SCHEMA_OF_KIND else "NULL"
            lines.append(f'    {{"{field}", {KINDS[kind][0]}, offsetof(fsil_{ident}_t, '
                         f'{c_ident(field)}), {schema}}},')
        lines.append("};")
    lines += ["", "static const fsil_layout_t layouts[FSIL_MSG_MAX_ID + 1] = {"]
    roles = table.get("ROLES", {})
    for type_id, name, layout in msgs:
        role = roles.get(type_id)
        if role is None:
            lines.append(f'    [{type_id}] = {{"{name}", {len(layout)}, fields_{c_ident(name)}, '
                         f'NULL, 0}},')
        else:
            if ("role", "s") not in layout:
                raise SystemExit(f"gen_protocol: {name} has a role but no role field of kind s")
            lines.append(f'    [{type_id}] = {{"{name}", {len(layout)}, fields_{c_ident(name)}, '
                         f'"{role}", offsetof(fsil_{c_ident(name)}_t, role)}},')
    lines += ["};", "",
              "static const char *const modes[FSIL_MODE_COUNT] = {"]
    lines += [f'    "{mode}",' for mode in table["MODES"]]
    lines += ["};", "",
              "const fsil_layout_t *fsil_layout(uint32_t type_id)",
              "{",
              "    if (type_id > FSIL_MSG_MAX_ID || layouts[type_id].fields == NULL) {",
              "        return NULL;",
              "    }",
              "    return &layouts[type_id];",
              "}", "",
              "const char *fsil_msg_name(uint32_t type_id)",
              "{",
              "    const fsil_layout_t *layout = fsil_layout(type_id);",
              '    return layout != NULL ? layout->name : "unknown";',
              "}", "",
              "const char *fsil_mode_name(uint32_t mode)",
              "{",
              '    return mode < FSIL_MODE_COUNT ? modes[mode] : "unknown";',
              "}", "",
              "const char *fsil_check_text(fsil_check_t check)",
              "{",
              "    return check >= 1 && check <= FSIL_CHECK_NESTED ? check_texts[check] : \"?\";",
              "}", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    table = load_table()
    wanted = {HEADER: render_header(table), TABLES: render_tables(table)}
    stale = [path for path, text in wanted.items()
             if not path.is_file() or path.read_text() != text]
    if check:
        for path in stale:
            print(f"gen_protocol: {path.relative_to(ROOT)} is out of date with "
                  f"bridge/protocol.py: run `make -C bridge/c generate`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"gen_protocol: wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
