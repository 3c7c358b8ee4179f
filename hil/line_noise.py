"""A noisy serial cable for tests and benchmarks: two ttys joined through a bit-flipping relay.

    with NoisyLine(flip_per_byte=1e-4, seed=7) as line:   # a null modem with line noise
        plant_port, fsw_port = line.names                  # /dev/pts/N, /dev/pts/M
        ...                                                # open each by path (pyserial)
    line.flips                                             # bits flipped, per direction

Each pseudo-terminal's slave end is set raw and kept open here (so its settings hold until
the program under test opens it); a thread copies bytes between the masters and flips one
random bit in each byte with probability ``flip_per_byte``, independently per byte and per
direction. The noise comes from numpy generators spawned from ``SeedSequence(seed)``: the
same seed damages the same bytes of the same byte stream.

:meth:`NoisyLine.attach` joins one end to a descriptor that is not a pty of ours (the pty
master a virtual board holds), so the plant's port and the board are separated by the noise.

``python -m hil.line_noise --rate 1e-4 --seed 1`` runs one as a process: it prints the two
port names on one line and relays until interrupted, then prints the counts.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import threading
import tty

import numpy as np

CHUNK_BYTES = 65536
IDLE_S = 0.05          # how often the relay looks at its stop flag when nothing moves


class NoisyLine:
    """Two raw ptys joined by a relay thread that flips bits (``flip_per_byte``, seeded)."""

    def __init__(self, flip_per_byte: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= flip_per_byte <= 1.0:
            raise ValueError(f"flip_per_byte must be within 0..1, got {flip_per_byte!r}")
        self.flip_per_byte = flip_per_byte
        self.ends: list[tuple[int, int, str]] = []   # (master, slave, name)
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            self.ends.append((master, slave, os.ttyname(slave)))
        self._rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
        self._next_hit = [self._first_hit(rng) for rng in self._rngs]   # stream offsets
        self._peer = {self.ends[0][0]: self.ends[1][0], self.ends[1][0]: self.ends[0][0]}
        self.bytes = [0, 0]   # bytes relayed a -> b, b -> a
        self.flips = [0, 0]   # bits flipped a -> b, b -> a
        self.dropped = [0, 0]  # bytes nobody took (the far end not open): lost, as on a cable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The ports' device paths: (end a, end b), or (end a,) after :meth:`attach`."""
        return tuple(end[2] for end in self.ends)

    def attach(self, fd: int) -> None:
        """Join end a to ``fd`` instead of end b (whose pty is closed): e.g. the raw slave
        of a pty whose master a virtual board holds. Call before :meth:`start`."""
        master_b, slave_b, _ = self.ends.pop()
        os.close(master_b)
        os.close(slave_b)
        master_a = self.ends[0][0]
        self._peer = {master_a: fd, fd: master_a}

    def _first_hit(self, rng: np.random.Generator) -> int:
        p = self.flip_per_byte
        return int(rng.geometric(p)) - 1 if p > 0.0 else -1

    def start(self) -> NoisyLine:
        for fd in self._peer:
            os.set_blocking(fd, False)
        self._thread = threading.Thread(target=self._relay, name="noisy-line", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the relay and close the ptys (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        for master, slave, _ in self.ends:
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.ends = []

    def __enter__(self) -> NoisyLine:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def damage(self, data: bytes, way: int) -> tuple[bytes, int]:
        """``data``, the next bytes of direction ``way`` (0: a -> b, 1: b -> a), with one
        random bit flipped in each byte the noise hits; and how many bits were flipped.

        The bytes hit are a Bernoulli process over the direction's byte stream (gaps drawn
        from a geometric distribution), so they do not depend on how the stream is cut
        into reads: the same seed damages the same bytes of the same stream."""
        n = len(data)
        if not n or self.flip_per_byte <= 0.0:
            return data, 0
        rng, start = self._rngs[way], self.bytes[way]
        out = None
        hits = 0
        while self._next_hit[way] < start + n:
            if out is None:
                out = bytearray(data)
            out[self._next_hit[way] - start] ^= 1 << int(rng.integers(0, 8))
            hits += 1
            self._next_hit[way] += int(rng.geometric(self.flip_per_byte))
        return (bytes(out) if out is not None else data), hits

    def _relay(self) -> None:
        peer = self._peer
        first = self.ends[0][0]
        while not self._stop.is_set():
            try:
                ready = select.select(list(peer), [], [], IDLE_S)[0]
            except (OSError, ValueError):
                return   # a descriptor was closed under us: the line is being taken down
            for fd in ready:
                try:
                    data = os.read(fd, CHUNK_BYTES)
                except OSError:
                    continue   # nothing after all (EAGAIN), or that end hung up for now (EIO)
                if not data:
                    continue
                way = 0 if fd == first else 1
                data, hits = self.damage(data, way)
                self.bytes[way] += len(data)
                self.flips[way] += hits
                self.dropped[way] += _write(peer[fd], data)


def _write(fd: int, data: bytes) -> int:
    """Write ``data`` to a non-blocking ``fd``, waiting at most IDLE_S for room at a time;
    returns the bytes that found no room (a port nobody reads: lost, as on a real line)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            if not select.select([], [fd], [], IDLE_S)[1]:
                return len(view)
        except OSError:
            return len(view)
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hil.line_noise", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=1e-4, help="bit flips per byte (default 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        line = NoisyLine(args.rate, args.seed)
    except ValueError as e:
        print(f"line_noise: {e}", file=sys.stderr)
        return 2
    with line:
        print(*line.names, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    print(f"relayed {line.bytes[0]} + {line.bytes[1]} bytes, flipped {line.flips[0]} + "
          f"{line.flips[1]} bits", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
