"""Benchmark: the codec's cost per message, beside bare msgpack on the same objects.

    .venv/bin/python bench/codec.py [--seconds 3] [--json FILE]

Two messages as a 50 Hz run sends them: a FRAME with 4 IMU samples, an altimeter sample,
(protocol 2) a velocimeter sample and (protocol 3) a star tracker sample, and a COMMAND with a
navigation estimate. For each, in the same run and interleaved in short blocks so both see
the same load:

* codec: ``bridge.codec.encode`` + ``bridge.codec.decode`` (every field checked: kinds,
  integer widths, finite floats, monotonic IMU stamps);
* msgpack: ``msgpack.packb`` + ``msgpack.unpackb`` of the same array, no checks: the floor.

Prints the median cost per encode+decode pair in microseconds of this thread's CPU time (so
a loaded machine inflates it less than wall time) and the ratio codec/msgpack (median of
paired blocks). The codec's cost is part of issue 9's per-cycle budget: one
FRAME and one COMMAND are encoded and decoded once per cycle (each side does half).
Run it with another checkout's bridge on the path (PYTHONPATH=OTHER/ .venv/bin/python
bench/codec.py) to compare two versions; the ratio is comparable across machines and load.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another checkout can be measured

import msgpack  # noqa: E402

from bridge import protocol as p  # noqa: E402
from bridge.codec import decode, encode  # noqa: E402

BLOCK_S = 0.05


def _frame_fields() -> list:
    t_us = 30_000_000 + 20_000 * 1234
    imu = [[t_us - 5000 * (3 - k), 0.0012 + 1e-5 * k, -0.00031, 0.008113, 1.2e-6, -3.4e-7,
            2.2e-7] for k in range(4)]
    fields = {"seq": 1234, "t_us": t_us, "imu": imu, "alt": [t_us - 13_000, 1523.75, True],
              "vel": [t_us - 7_000, -1.25, -1.5, -1.375, 1700.5, 1690.25, 1720.0, 7],
              "att": [t_us - 100_000, 0.6532814824381883, -0.2705980500730985,
                      0.6532814824381883, 0.2705980500730985, True]}
    return [fields[name] for name, _ in p.LAYOUTS[p.FRAME]]


def _command_fields() -> list:
    fields = {"seq": 1234, "throttle": 0.6173, "torque_nm": [-12.5, 3.25, -0.004], "mode": 3,
              "compute_us": 850, "nav": [1090143.58, -1366952.04, 1988.4, -41.3, 27.9,
                                         -35.02, 1987.61], "flags": 7}
    return [fields[name] for name, _ in p.LAYOUTS[p.COMMAND]]


def _codec_pair(type_id: int, fields: list, n: int) -> None:
    for _ in range(n):
        decode(encode(type_id, fields))


def _msgpack_pair(type_id: int, fields: list, n: int) -> None:
    obj = [p.PROTOCOL_VERSION, type_id, *fields]
    for _ in range(n):
        msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False)


def _block_us(fn, type_id: int, fields: list, n: int) -> float:
    """CPU time of this thread per call, us: time spent descheduled on a busy machine is
    not counted (wall time would be)."""
    t0 = time.thread_time_ns()
    fn(type_id, fields, n)
    return (time.thread_time_ns() - t0) / n / 1000.0


def measure(type_id: int, fields: list, seconds: float) -> dict:
    """Median us per encode+decode, codec and msgpack, from interleaved blocks."""
    n = 200
    while _block_us(_codec_pair, type_id, fields, n) * n * 1e-6 < BLOCK_S / 2:
        n *= 2
    codec_us, bare_us, ratios = [], [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(ratios) < 5:
        c = _block_us(_codec_pair, type_id, fields, n)
        b = _block_us(_msgpack_pair, type_id, fields, n)
        codec_us.append(c)
        bare_us.append(b)
        ratios.append(c / b)
    return {"codec_us": statistics.median(codec_us), "msgpack_us": statistics.median(bare_us),
            "ratio": statistics.median(ratios), "blocks": len(ratios),
            "payload_bytes": len(encode(type_id, fields))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per message (default 3)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    import bridge
    print(f"bridge from {pathlib.Path(bridge.__file__).parent}, protocol {p.PROTOCOL_VERSION}")
    results = {}
    print(f"{'message':<8} {'bytes':>5} {'codec us':>9} {'msgpack us':>11} {'ratio':>6}")
    for name, type_id, fields in (("FRAME", p.FRAME, _frame_fields()),
                                  ("COMMAND", p.COMMAND, _command_fields())):
        r = measure(type_id, fields, args.seconds)
        results[name.lower()] = r
        print(f"{name:<8} {r['payload_bytes']:>5} {r['codec_us']:>9.2f} {r['msgpack_us']:>11.2f} "
              f"{r['ratio']:>6.2f}")
    total = results["frame"]["codec_us"] + results["command"]["codec_us"]
    print(f"per cycle (one FRAME and one COMMAND encoded and decoded): {total:.1f} us")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
