"""Benchmark: lockstep cycles per second over a serial link, beside a bare pyserial echo.

    .venv/bin/python bench/serial_lockstep.py [--seconds 4]

Two pseudo-terminals joined by a forwarding process make a null-modem cable: both ends
are real ttys opened by name, as a USB board's /dev/ttyACM0 would be. Two measurements
over the same cable, in the same run:

* echo: bare pyserial, no framing or codec. Write N bytes (N = one framed FRAME), a peer
  process reads N bytes and writes them back, read N bytes. The floor this machine's ttys
  and scheduler allow for a round trip of that size.
* lockstep: the plant loop of a run. Encode a realistic FRAME (4 IMU samples and an
  altimeter sample), send it through a SerialLink (COBS + CRC framing), wait for the
  COMMAND that a peer process answers through its own SerialLink, decode it.

The two alternate in blocks of 0.5 s, so on a shared machine both see the same load; the
table gives the median and the range of the blocks. The ratio lockstep/echo (median of
the paired blocks) is what the link, framing and codec cost on top of the ttys, or save:
the COMMAND coming back is shorter than the FRAME that the echo returns. The whole run
takes about 2 x --seconds plus a second of set-up.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import select
import statistics
import sys
import time
import tty

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import serial  # noqa: E402

from bridge import open_link, protocol as p  # noqa: E402
from bridge.codec import encode  # noqa: E402
from bridge.framing import encode_frame  # noqa: E402

STOP = b"\xff"  # echo peer: a chunk of these ends the echo phase
WARMUP_ROUNDS = 50
BLOCK_S = 0.5  # one measurement block; echo and lockstep blocks alternate


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="time spent on each of the two measurements, s (default 4)")
    return parser.parse_args(argv)


def _frame(seq: int) -> bytes:
    """A FRAME as a 50 Hz plant with a 200 Hz IMU sends it: 4 IMU samples, an altimeter
    and a velocimeter sample."""
    t_us = 30_000_000 + 20_000 * seq
    imu = [[t_us - 5000 * (3 - k), 0.0012 + 1e-5 * k, -0.00031, 0.008113, 1.2e-6, -3.4e-7,
            2.2e-7] for k in range(4)]
    return encode(p.FRAME, [seq, t_us, imu, [t_us - 13_000, 1523.75, True],
                            [t_us - 7_000, -1.25, -1.5, -1.375, 1700.5, 1690.25, 1720.0, 7], None])


def _command(seq: int) -> bytes:
    return encode(p.COMMAND, [seq, 0.6173, [-12.5, 3.25, -0.004], 3, 850,
                              [1090143.58, -1366952.04, 1988.4, -41.3, 27.9, -35.02, 1987.61], 5])


# --- the null modem: a process copying bytes between the two pty masters


def _forward(master_a: int, master_b: int) -> None:
    peer = {master_a: master_b, master_b: master_a}
    while True:
        for fd in select.select(list(peer), [], [])[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return  # every slave closed: the run is over
            view = memoryview(data)
            while view:
                view = view[os.write(peer[fd], view):]


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


# --- the peer: echoes, or answers frames with commands, as the main process asks


def _peer(port: str, echo_size: int, control) -> None:
    while True:
        mode = control.recv()
        if mode == "echo":
            with serial.Serial(port, timeout=10.0, exclusive=True) as tty_port:
                control.send("ready")
                while True:
                    data = tty_port.read(echo_size)
                    if not data or data == STOP * echo_size:
                        break
                    tty_port.write(data)
        elif mode == "lockstep":
            with open_link(f"serial://{port}", "fsw") as link:
                control.send("ready")
                while (msg := link.recv_msg(10.0, expect=p.FRAME)).name != "end":
                    link.send(_command(msg.seq))
        else:
            return
        control.send("done")


# --- the two measurements, one block each


def _echo(port: str, size: int, seconds: float) -> float:
    """Echo round trips per second over ``seconds``."""
    data = encode_frame(_frame(0))
    assert len(data) == size
    with serial.Serial(port, timeout=10.0, exclusive=True) as tty_port:
        for _ in range(WARMUP_ROUNDS):
            tty_port.write(data)
            tty_port.read(size)
        rounds, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            tty_port.write(data)
            if tty_port.read(size) != data:
                raise RuntimeError("echo came back different")
            rounds += 1
        tty_port.write(STOP * size)
    return rounds / elapsed


def _lockstep(port: str, seconds: float, totals: dict) -> float:
    """Lockstep cycles per second over ``seconds``; adds the link's stats to ``totals``."""
    with open_link(f"serial://{port}", "plant") as link:
        seq = 0
        for seq in range(WARMUP_ROUNDS):
            link.send(_frame(seq))
            link.recv_msg(10.0, expect=p.COMMAND)
        cycles, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            seq += 1
            link.send(_frame(seq))
            if link.recv_msg(10.0, expect=p.COMMAND).seq != seq:
                raise RuntimeError(f"command out of step at seq {seq}")
            cycles += 1
        link.send_msg(p.END, [seq, "benchmark done"])
        for key, value in link.stats.items():
            totals[key] = totals.get(key, 0) + value
    return cycles / elapsed


def _run_block(mode: str, control, measure) -> float:
    control.send(mode)
    if not control.poll(10.0) or control.recv() != "ready":
        raise RuntimeError(f"the {mode} peer did not start")
    rate = measure()
    if not control.poll(10.0) or control.recv() != "done":
        raise RuntimeError(f"the {mode} peer did not finish")
    return rate


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    blocks = max(1, round(args.seconds / BLOCK_S))
    context = multiprocessing.get_context("fork")  # the children inherit the pty masters
    (master_a, slave_a, port_a), (master_b, slave_b, port_b) = _pty(), _pty()
    forwarder = context.Process(target=_forward, args=(master_a, master_b), daemon=True)
    forwarder.start()
    os.close(master_a)
    os.close(master_b)
    frame_bytes = len(encode_frame(_frame(0)))
    command_bytes = len(encode_frame(_command(0)))
    control, peer_end = context.Pipe()
    peer = context.Process(target=_peer, args=(port_b, frame_bytes, peer_end), daemon=True)
    peer.start()
    echo, lock, totals = [], [], {}
    try:
        for k in range(blocks):  # interleaved, so both see the same load on a shared machine
            order = ("echo", "lockstep") if k % 2 == 0 else ("lockstep", "echo")
            for mode in order:
                if mode == "echo":
                    echo.append(_run_block(mode, control,
                                           lambda: _echo(port_a, frame_bytes, BLOCK_S)))
                else:
                    lock.append(_run_block(mode, control,
                                           lambda: _lockstep(port_a, BLOCK_S, totals)))
        control.send("quit")
        peer.join(10.0)
    finally:
        for child in (peer, forwarder):
            if child.is_alive():
                child.terminate()
        os.close(slave_a)
        os.close(slave_b)
        forwarder.join(5.0)

    lock_rate = statistics.median(lock)
    ratios = [b / a for a, b in zip(echo, lock)]
    print(f"serial lockstep over a pty null modem ({port_a} <-> {port_b}): {blocks} blocks of "
          f"{BLOCK_S:g} s each, interleaved; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}")
    print()
    print(f"{'':34}{'median/s':>10}{'min-max/s':>15}{'us each':>9}  bytes out / back")
    for name, rates, out_back in (
            ("bare pyserial echo", echo, f"{frame_bytes} / {frame_bytes}"),
            ("SerialLink lockstep FRAME/COMMAND", lock, f"{frame_bytes} / {command_bytes}")):
        rate = statistics.median(rates)
        spread = f"{min(rates):.0f}-{max(rates):.0f}"
        print(f"{name:34}{rate:10.0f}{spread:>15}{1e6 / rate:9.0f}  {out_back}")
    print(f"{'ratio lockstep / echo':34}{statistics.median(ratios):10.2f}"
          f"{min(ratios):8.2f}-{max(ratios):.2f}   (median of paired blocks)")
    print()
    errors = {k: totals[k] for k in ("crc_errors", "cobs_errors", "runts", "oversize")}
    print(f"plant end: {totals['frames_ok']} frames received, errors {errors}, "
          f"{totals['bytes_out']} bytes written")
    uart_s = (frame_bytes + command_bytes) * 10 / 921600  # 8N1: 10 bits a byte
    print(f"a 50 Hz run needs 50 cycles/s: headroom x{lock_rate / 50:.0f} here. The ptys have "
          f"no baud rate; on a 921600 baud UART the bytes alone take {uart_s * 1e3:.1f} ms a "
          f"cycle (at most {1 / uart_s:.0f} cycles/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
