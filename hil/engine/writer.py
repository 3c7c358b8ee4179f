"""The history writer: a process of its own that formats and writes a run's history.

Formatting the history (``repr`` of some 40 changing floats a row for CSV, the column
buffers for Parquet) was a tenth of an in-process cycle. :class:`ProcessSink` is the sink
the recorder writes to instead of :class:`hil.engine.recorder.CsvSink` or
``ParquetSink`` in a lockstep run: each block of rows is pickled (about 0.15 ms for 256
rows, against 4.6 ms to format them as CSV) and sent down a pipe to a writer process
(``python -m hil.engine.writer``), which formats and writes it with the very same sink
code -- so the file is the same byte for byte -- on another CPU, while the loop goes on.

Nothing is lost:

- **A bounded queue.** At most :data:`QUEUE_BLOCKS` messages are sent and not yet
  acknowledged; the writer acknowledges each once its bytes are in the file (it writes
  the file's size after it). The loop waits for room, bounded by :data:`WAIT_S`,
  looking at the writer every :data:`SLICE_S`.
- **A writer that dies or stalls** (killed, out of memory, a full disk): it is killed if
  still there, the CSV file is cut back to the last acknowledged size (no partial line)
  and the plant's process writes the messages the writer never acknowledged, then
  everything after, itself: the history is whole. ``failure`` then holds a
  :class:`hil.errors.HistoryWriterFailure` naming the process and how it ended; the
  recorder raises it in the loop, and the run ends there (outcome ``history_failure``,
  exit code 4). A Parquet file is readable only once its writer closes it, so a dead
  Parquet writer's file is incomplete and the failure says so.
- **Signals.** The writer runs in a session of its own (a terminal's Ctrl-C reaches the
  run, not it); when the run ends, however it ends, the recorder's close sends what is
  left and waits, bounded, for the writer to finish. A plant killed with SIGKILL closes
  the pipe: the writer writes every message it received and exits.

A run's first rows (fewer than :data:`START_ROWS` written at once, as a run shorter than
a block writes them) are written in the plant's process: the writer starts with the first
full block, so short runs pay no process start. ``FSIL_HISTORY_WRITER=0`` writes
everything in the plant's process (as before; for comparisons).
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from hil.errors import ConfigError, HistoryWriterFailure

WRITER_ENV = "FSIL_HISTORY_WRITER"
QUEUE_BLOCKS = 8        # messages sent and not yet written, at most (about 1 MB)
WAIT_S = 10.0           # longest wait on the writer: room in the queue, its end
SLICE_S = 0.1           # ... looking at its process this often
START_ROWS = 64         # the writer starts with the first write of at least this many rows
PIPE_BYTES = 1 << 20    # the pipe to the writer (Linux: F_SETPIPE_SZ, best effort)
KILL_WAIT_S = 2.0       # a stalled writer: SIGKILL, then at most this long to reap it
WRITER_NICE = int(os.environ.get("FSIL_WRITER_NICE", "10"))
_LEN = struct.Struct("<I")
_ACK = struct.Struct("<Q")


def writer_enabled(default: bool = True) -> bool:
    """Whether a run writes its history file through a writer process: ``default`` unless
    ``FSIL_HISTORY_WRITER`` says (``0`` never, ``1`` always), and never with one CPU."""
    value = os.environ.get(WRITER_ENV, "")
    on = default if value == "" else value != "0"
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return on and cpus >= 2


def open_history(fmt: str | None, out_dir: Path | None, cols: Sequence, writer: bool = True):
    """The sink for ``history=fmt`` (:func:`hil.engine.recorder.open_sink`), a CSV or
    Parquet file being a :class:`ProcessSink` when :func:`writer_enabled` with default
    ``writer`` (in-process lockstep runs: True; over a link: False, the plant formats the
    rows while the flight software computes; real time: never, its own policy)."""
    from hil.engine.recorder import HISTORY_FORMATS, history_file_name, open_sink
    if writer is not None and writer_enabled(writer) and out_dir is not None \
            and fmt in HISTORY_FORMATS and fmt != "memory":
        return ProcessSink(fmt, Path(out_dir) / history_file_name(fmt), cols)
    return open_sink(fmt, out_dir, cols)


class ProcessSink:
    """A file sink (``fmt`` ``"csv"`` or ``"parquet"``) whose rows are formatted and
    written by a writer process; see the module docstring. ``failure`` is None or the
    :class:`HistoryWriterFailure` of a writer that died (the rows are written anyway
    for CSV)."""

    idle_rows = 128          # the recorder's idle(): a half block a call, in one message
    idle_chunk_rows = 128

    def __init__(self, fmt: str, path: str | os.PathLike[str], cols: Sequence) -> None:
        from hil.engine.recorder import CsvSink
        self.fmt = fmt
        self.path = Path(path)
        self.cols = list(cols)
        self.realtime = any(c.name == "due_us" for c in self.cols)   # the writer's columns
        self.failure: HistoryWriterFailure | None = None
        self.proc: subprocess.Popen | None = None
        self.rows_sent = 0                    # rows sent to the writer process
        self.rows_local = 0                   # rows written in the plant's process
        self.pid: int | None = None
        self.cpu_s: float | None = None      # the writer's CPU time, once it has ended
        self._local = None                    # the plant's own sink: before the writer, after its death
        self._unacked: deque[bytes] = deque()
        self._ack_buf = b""
        self._size = 0                        # the file's size after the last acknowledged message
        self._closed = False
        if fmt == "csv":
            self._local = CsvSink(self.path, self.cols)    # the header, now (a bad folder fails here)
        elif fmt == "parquet":
            if importlib.util.find_spec("pyarrow") is None:
                raise ConfigError("history as Parquet needs pyarrow (pip install pyarrow)")
            open(self.path, "wb").close()     # a folder that cannot take it fails now
        else:
            raise ValueError(f"history format {fmt!r}: expected csv or parquet")

    # --- the sink interface ---------------------------------------------------------------
    def write(self, rows: Sequence[list], start: int, stop: int) -> None:
        if stop <= start:
            return
        if self.proc is None:
            if self.failure is None and (self._local is None or stop - start >= START_ROWS):
                self._start()
            if self.proc is None:   # a short run's first rows, or no writer any more
                self._local_sink().write(rows, start, stop)
                self.rows_local += stop - start
                return
        self.rows_sent += stop - start   # (the run's process writes them if the writer fails)
        self._send(pickle.dumps(rows[start:stop], pickle.HIGHEST_PROTOCOL))

    def flush(self) -> None:
        """Rows are written as the writer gets them (it flushes after each message); the
        plant's own sink is flushed."""
        if self.proc is None and self._local is not None:
            self._local.flush()
        elif self.proc is not None:
            self._read_acks()

    def close(self) -> None:
        """End the writer's input and wait for it, bounded by :data:`WAIT_S`: it writes
        what it was sent and closes the file. A writer that fails here is replaced by the
        plant's process as anywhere else (``failure`` is set; nothing is raised)."""
        if self._closed:
            return
        self._closed = True
        proc = self.proc
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            deadline = time.monotonic() + WAIT_S
            while proc.poll() is None and time.monotonic() < deadline:
                self._read_acks(min(SLICE_S, max(0.0, deadline - time.monotonic())))
            if proc.poll() is None:
                self._fail(f"did not finish writing within {WAIT_S:g} s of the run's end")
            else:
                self._read_acks()
                if proc.returncode != 0 or self._unacked:
                    self._fail(self._death(proc))
                else:
                    self._cpu_from(proc)
                    self._close_pipes(proc)
                    self.proc = None
        if self._local is not None:
            self._local.close()

    # --- the writer process ---------------------------------------------------------------
    def _start(self) -> None:
        if self._local is not None:      # rows written here so far: the writer appends
            self._local.close()
            self._local = None
        self._size = self.path.stat().st_size
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            proc = self.proc = subprocess.Popen(
                [sys.executable, "-m", "hil.engine.writer", self.fmt, str(self.path),
                 "1" if self.realtime else "0"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, env=env, close_fds=True)
        except OSError as e:   # no process to be had: the run's process writes, and says so
            self.failure = HistoryWriterFailure(
                f"history writer process could not start ({e}); "
                + (f"{self.path.name} was written by the run's process" if self.fmt == "csv"
                   else f"{self.path.name} is empty"))
            return
        self.pid = proc.pid
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            os.set_blocking(f.fileno(), False)
        try:   # room for the whole queue in the pipe itself (Linux)
            import fcntl
            fcntl.fcntl(self.proc.stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031),
                        PIPE_BYTES)
        except (ImportError, OSError):
            pass

    def _send(self, payload: bytes) -> None:
        proc = self.proc
        if self._unacked:
            self._read_acks()
        deadline = None
        while len(self._unacked) >= QUEUE_BLOCKS:      # the bounded queue: wait for room
            if deadline is None:
                deadline = time.monotonic() + WAIT_S
            if proc.poll() is not None:
                return self._fail_keep(payload, self._death(proc))
            if time.monotonic() >= deadline:
                return self._fail_keep(payload, f"stalled: no block written within {WAIT_S:g} s")
            self._read_acks(SLICE_S)
        self._unacked.append(payload)
        data = memoryview(_LEN.pack(len(payload)) + payload)
        fd = proc.stdin.fileno()
        deadline = time.monotonic() + WAIT_S
        while data:
            try:
                n = os.write(fd, data)
                data = data[n:]
                continue
            except BlockingIOError:
                pass
            except OSError:   # EPIPE: the writer is gone
                return self._fail(None)
            if proc.poll() is not None:
                return self._fail(self._death(proc))
            if time.monotonic() >= deadline:
                return self._fail(f"stalled: took no block within {WAIT_S:g} s")
            select.select([proc.stdout], [fd], [], SLICE_S)
            self._read_acks()

    def _read_acks(self, wait_s: float = 0.0) -> None:
        """Take the writer's acknowledgements (waiting up to ``wait_s`` for one)."""
        proc = self.proc
        if proc is None:
            return
        fd = proc.stdout.fileno()
        if wait_s > 0:
            select.select([fd], [], [], wait_s)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            self._ack_buf += chunk
        buf = self._ack_buf
        n = len(buf) // _ACK.size
        if n:
            self._size = _ACK.unpack_from(buf, (n - 1) * _ACK.size)[0]
            for _ in range(min(n, len(self._unacked))):
                self._unacked.popleft()
            self._ack_buf = buf[n * _ACK.size:]

    def _fail_keep(self, payload: bytes, detail: str) -> None:
        self._unacked.append(payload)
        self._fail(detail)

    def _fail(self, detail: str | None) -> None:
        """The writer is gone or stuck: kill and reap it, write what it did not, say so
        (``detail`` None: how it ended)."""
        proc = self.proc
        if detail is None:
            try:
                proc.wait(KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
            detail = self._death(proc)
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
            try:
                proc.wait(KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
        self._read_acks()
        why = self._stderr_line(proc)
        self._close_pipes(proc)
        self.proc = None
        pending = list(self._unacked)
        self._unacked.clear()
        what = f"history writer process {proc.pid} {detail}"
        if why:
            what += f" ({why})"
        if self.fmt == "csv":
            try:
                os.truncate(self.path, self._size)    # no partial line of the writer's
                local = self._local_sink()
                for payload in pending:
                    rows = pickle.loads(payload)
                    local.write(rows, 0, len(rows))
                    self.rows_local += len(rows)
                local.flush()
                what += f"; {self.path.name} was completed by the plant's process"
            except OSError as e:
                what += f"; {self.path.name} holds the rows before: {e}"
        else:
            what += (f"; {self.path.name} is incomplete (a Parquet file is readable only "
                     "once its writer closes it)")
        if self.failure is None:
            self.failure = HistoryWriterFailure(what)

    def writer_report(self) -> dict:
        """summary.json's ``timing.history_writer``: the writer process, the rows it was
        sent and those the plant's process wrote itself, the writer's CPU seconds."""
        return {"pid": self.pid, "rows_sent": self.rows_sent, "rows_in_plant": self.rows_local,
                "cpu_s": self.cpu_s, "failed": self.failure is not None}

    def _local_sink(self):
        if self._local is None:
            if self.fmt != "csv":
                from hil.engine.recorder import NullSink
                self._local = NullSink()
            else:
                from hil.engine.recorder import CsvSink
                self._local = CsvSink(self.path, self.cols, append=True)
        return self._local

    def _death(self, proc: subprocess.Popen) -> str:
        rc = proc.returncode
        if rc is None:
            return "stopped answering"
        if rc < 0:
            try:
                return f"was killed by {signal.Signals(-rc).name} (exit code {rc})"
            except ValueError:
                pass
        return f"exited with code {rc}" if rc else \
            f"ended with {len(self._unacked)} block(s) unwritten"

    def _stderr_line(self, proc: subprocess.Popen) -> str:
        try:
            text = os.read(proc.stderr.fileno(), 4096).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ""

    def _cpu_from(self, proc: subprocess.Popen) -> None:
        try:
            self.cpu_s = float(os.read(proc.stderr.fileno(), 4096).decode().split()[-1])
        except (OSError, ValueError, IndexError):
            self.cpu_s = None

    @staticmethod
    def _close_pipes(proc: subprocess.Popen) -> None:
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass


# ----------------------------------------------------------------------------- the process
def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        if data:
            raise EOFError("the run's process closed the pipe in the middle of a block")
        return b""
    return data


def writer_main(argv: list[str]) -> int:
    """``python -m hil.engine.writer FMT PATH REALTIME``: blocks from stdin (length, then a
    pickled list of rows), written to PATH (CSV appended; Parquet written anew); after
    each block the file's size on stdout (8 bytes). At the end of stdin the file is closed
    and the process's CPU seconds printed on stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the run ends it, by closing its input
    try:   # below the run's own processes: it fills their idle time (see WRITER_NICE)
        os.nice(WRITER_NICE)
    except OSError:
        pass
    fmt, path, realtime = argv[0], argv[1], argv[2] == "1"
    from hil.engine.csvtext import format_csv     # CSV: no numpy in this process
    from hil.engine.schema import columns
    cols = columns(realtime)
    inp = sys.stdin.buffer
    ack = sys.stdout.buffer
    try:
        if fmt == "csv":
            kinds = [c.kind for c in cols]
            out = open(path, "ab", buffering=0)
            size = out.seek(0, os.SEEK_END)
            sink = None
        else:
            from hil.engine.recorder import ParquetSink
            sink = ParquetSink(path, cols)
            out = None
            size = 0
        while True:
            head = _read_exact(inp, _LEN.size)
            if not head:
                break
            rows = pickle.loads(_read_exact(inp, _LEN.unpack(head)[0]))
            if out is not None:
                data = format_csv(kinds, rows).encode("utf-8")
                view = memoryview(data)
                while view:
                    view = view[out.write(view):]
                size += len(data)
            else:
                sink.write(rows, 0, len(rows))
            ack.write(_ACK.pack(size))
            ack.flush()
        if out is not None:
            out.close()
        else:
            sink.close()
    except BrokenPipeError:
        return 3
    except Exception as e:   # one line for the run's failure message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"{time.process_time():.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(writer_main(sys.argv[1:]))
