"""The plant's side of a run over a link: handshake, the loop, supervision, the run folder.

:class:`PlantSide` (and :func:`run_two_process`) opens the link, optionally starts the
flight-software process through a launcher ``launch(url) -> subprocess.Popen`` and watches
it, sends HELLO and waits for HELLO_ACK, runs the lockstep or real-time loop, sends END,
and writes the run folder: the history as the run goes (``history.csv`` by default), then
``summary.json`` and the plots. A run that fails -- the peer stalls, dies or talks nonsense
-- still writes its summary with a one-line reason naming the side and the seq, and keeps
the history written so far.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bridge import protocol
from bridge.codec import encode
from bridge.errors import BridgeError, LinkOpenError, PeerTimeout, ProtocolError
from bridge.url import open_link
from plant.config import ScenarioConfig
from plant.lander import LanderPlant

import hil.engine.signals as signals
from hil.engine.context import Progress, RunContext, RunResult, hello_rates
from hil.engine.control import ControlServer, FaultControl
from hil.engine.lockstep import POLL_SLICE_S, run_lockstep, wait_message
from hil.engine.placement import Placement
from hil.engine.recorder import HistoryRecorder
from hil.engine.writer import open_history
from hil.engine.schema import columns
from hil.engine.summary import build_summary, finish, history_file, write_provisional
from hil.engine.timing import TimingLog
from hil.errors import (ConfigError, HilError, HistoryWriterFailure, Interrupted, LinkFailure,
                        PeerEnded)
from hil.retransmit import Retransmitter

Launcher = Callable[[str], subprocess.Popen]
REAP_WAIT_S = 0.3   # an interrupted run's flight software: END, then this long to leave
END_WAIT_S = 0.5         # sending END: best effort, the peer may be gone
END_REPLY_WAIT_S = 0.05  # ... the reply to the peer's own END (it has likely closed)
END_SLICE_S = 0.02       # ... sent in slices this long, looking at the peer in between


class PlantSide:
    """One run of the plant against a flight software reached through a link.

    ``control``: True serves the fault-control channel at ``ipc://OUT_DIR/control.sock``,
    a string serves that ZeroMQ endpoint (ipc or loopback tcp), False none.
    ``history``: "csv" (default), "parquet", "memory" or None; ``plots``: draw descent.png
    (and timing.png in real time); ``build``: the ``build`` block of summary.json (fsil
    version, git commit, command line), as the command line gives it. ``link_dir``: a
    temporary folder holding the link's socket (``fsil run``'s /tmp/fsil-*), removed as
    soon as the link is closed and the flight software reaped.

    summary.json is written twice: a provisional one as the run starts (outcome
    ``incomplete``, for a plant killed with SIGKILL) and the real one at the end.
    """

    def __init__(self, cfg: ScenarioConfig, url: str, out_dir: Path, seed: int | None = None,
                 fsw_launcher: Launcher | None = None, progress: bool = False,
                 hello_timeout_s: float = 60.0, control: bool | str = True,
                 realtime: bool = False, history: str | None = "csv",
                 plots: bool = True, build: dict | None = None,
                 link_dir: str | os.PathLike[str] | None = None) -> None:
        self.cfg = cfg
        self.url = url
        self.out_dir = Path(out_dir)
        self.seed = cfg.run.seed if seed is None else seed
        self.fsw_launcher = fsw_launcher
        self.fsw_process: subprocess.Popen | None = None
        self.progress = progress
        self.hello_timeout_s = hello_timeout_s
        self.timeout_s = cfg.run.link_timeout_s
        self.realtime = realtime
        self.history = history
        self.plots = plots
        self.build = build
        self.link_dir = link_dir
        self.control = control
        self.control_endpoint: str | None = None
        self.timing: TimingLog | None = None

    def run(self) -> RunResult:
        """Run to the end (or the first failure); never raises for a peer's failure."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        wall0 = time.monotonic()
        cfg = self.cfg
        plant = LanderPlant(cfg)
        frame = plant.reset(self.seed)
        prop0 = plant.truth()["propellant_kg"]
        self.timing = TimingLog.for_run(cfg, self.realtime)
        # over a link the plant formats the rows while the flight software computes: a
        # writer process only when asked (FSIL_HISTORY_WRITER=1); real time: never
        sink = open_history(self.history, self.out_dir, columns(self.realtime),
                            writer=None if self.realtime else False)
        if self.plots:   # matplotlib loaded early, so that even an interrupted run plots
            from hil.plots import prefetch
            prefetch()
        ctx = RunContext(cfg, self.seed, plant,
                         HistoryRecorder(sink, self.realtime, plot_tap=self.plots),
                         self.timing, Progress(cfg.run.max_sim_time_s, self.progress),
                         check_alive=self._check_fsw_alive, timeout_s=self.timeout_s,
                         hello_timeout_s=self.hello_timeout_s, out_dir=self.out_dir)
        ctx.frame = frame
        info: dict = {"engine": "two_process", "fsw_runtime": None, "fsw_software": None,
                      "history_file": history_file(sink), "build": self.build}
        write_provisional(self.out_dir, cfg, self.seed, {
            **info, "link": self.url, "processes": {"plant_pid": os.getpid(), "fsw_pid": None}})
        failure: HilError | Interrupted | None = None
        peer_gone = False   # the flight software ended the run or died: no END to it
        placement = Placement()
        try:
            with signals.armed():   # SIGINT/SIGTERM end the run in order (hil.engine.signals)
                ctx.control = self._open_control()
                ctx.link = open_link(self.url, "plant")
                self.url = ctx.link.url  # the bound address (a tcp port 0 becomes the real port)
                if ctx.link.lossy:  # serial: retries (hil.retransmit; docs/protocol.md, Retries)
                    ctx.retx = Retransmitter(ctx.link, self._check_fsw_alive,
                                             peer_cpu=self._fsw_cpu_s)
                if self.fsw_launcher is not None:
                    self.fsw_process = self.fsw_launcher(self.url)
                    if not self.realtime and self.url.startswith("zmq+"):
                        placement.pin(self.fsw_process.pid)   # hil/engine/placement.py
                self._handshake(ctx, info)
                if self.realtime:
                    from hil.engine.realtime import RealtimeLoop
                    if self.plots:   # matplotlib's import done before the paced loop
                        from hil.plots import prefetch
                        prefetch(wait=True)
                    RealtimeLoop(ctx).run(ctx.frame)
                else:
                    run_lockstep(ctx, ctx.frame)
            self._end(ctx, ctx.frame.seq, plant.outcome.outcome + ": " + plant.outcome.reason)
        except Interrupted as e:
            failure = e
        except LinkOpenError as e:  # address in use, no such folder or port: exit 2
            failure = ConfigError(f"cannot open the link: {e}")
        except (LinkFailure, HistoryWriterFailure) as e:
            failure = e
        except ProtocolError as e:
            failure = LinkFailure(f"bad message from the flight software: {e}", side="fsw",
                                  seq=ctx.frame.seq)
        except BridgeError as e:
            failure = LinkFailure(str(e), side="link", seq=ctx.frame.seq)
        finally:
            if isinstance(failure, LinkFailure):   # the peer's END or death came first
                peer_gone = isinstance(failure, PeerEnded) or self._fsw_dead() \
                    or (ctx.link is not None and ctx.link.peer_gone())
                failure = signals.instead(failure)
            ctx.progress.close()
            try:
                ctx.recorder.close()
            finally:
                if failure is None and ctx.recorder.failure is not None:
                    failure = ctx.recorder.failure   # the writer failed as it closed
                if ctx.link is not None and failure is not None and not self._fsw_dead():
                    # END reasons (docs/protocol.md): the peer exits 3 on either; a peer that
                    # ended the run itself gets its reply with a short wait (it may be gone)
                    wait_s = END_REPLY_WAIT_S if peer_gone else END_WAIT_S
                    if isinstance(failure, Interrupted):
                        self._end(ctx, ctx.frame.seq,
                                  f"interrupted: {failure.signal_name} to the plant", wait_s)
                    elif isinstance(failure, HistoryWriterFailure):
                        self._end(ctx, ctx.frame.seq, f"history_failure: {failure}", wait_s)
                    else:
                        self._end(ctx, ctx.frame.seq, "link_failure: "
                                  + str(failure).removeprefix("link failure: "), wait_s)
                if ctx.link is not None:
                    ctx.link.close()
                if ctx.control is not None:
                    ctx.control.close()
            if isinstance(failure, Interrupted):
                self._reap()
            if self.link_dir is not None:   # the link is closed: its folder goes at once
                shutil.rmtree(self.link_dir, ignore_errors=True)
            placement.restore()
        info.update(
            link=self.url, link_stats=dict(ctx.link.stats) if ctx.link is not None else {},
            fsw_link_stats=ctx.link.peer_stats if ctx.link is not None else None,
            processes={"plant_pid": os.getpid(),
                       "fsw_pid": self.fsw_process.pid if self.fsw_process else None},
            control=self.control_endpoint)
        summary = build_summary(ctx, prop0, time.monotonic() - wall0, info, failure)
        return finish(ctx, summary, failure, plots=self.plots)

    # --- pieces -------------------------------------------------------------------------
    def _open_control(self) -> FaultControl | None:
        if self.control is False:
            return None
        endpoint = self.control if isinstance(self.control, str) else None
        control = FaultControl(ControlServer(self.out_dir, endpoint))
        self.control_endpoint = control.server.endpoint
        return control

    def _handshake(self, ctx: RunContext, info: dict) -> None:
        rates = hello_rates(self.cfg)
        payload = encode(protocol.HELLO, ["plant", self.cfg.name, rates,
                                          ctx.plant.fsw_config()])
        if ctx.retx is not None:  # HELLO repeated until acknowledged
            ack = ctx.retx.hello(payload, self.hello_timeout_s)
            info["fsw_runtime"] = ack.runtime
            info["fsw_software"] = ack.software
            return
        deadline = time.monotonic() + self.hello_timeout_s
        while True:  # the peer may take a while to start: wait in slices, watching it
            try:
                ctx.link.send(payload, timeout_s=POLL_SLICE_S)
                break
            except PeerTimeout:
                signals.check()
                self._check_fsw_alive(None, "connection")
                if time.monotonic() >= deadline:
                    raise LinkFailure(f"no flight software connected within "
                                      f"{self.hello_timeout_s:g} s", side="fsw",
                                      waited_s=self.hello_timeout_s) from None
        ack = wait_message(ctx, protocol.HELLO_ACK, self.hello_timeout_s, None, "HELLO_ACK")
        info["fsw_runtime"] = ack.runtime
        info["fsw_software"] = ack.software

    def _check_fsw_alive(self, seq: int | None, what: str) -> None:
        """LinkFailure naming the death and exit code if the flight-software process the
        plant started has ended (``what``: what the plant was sending or waiting for)."""
        p = self.fsw_process
        if p is not None and p.poll() is not None:
            rc = p.returncode
            try:
                death = f"was killed by {signal.Signals(-rc).name} (exit code {rc})" \
                    if rc < 0 else f"exited with code {rc}"
            except ValueError:
                death = f"exited with code {rc}"
            doing = "sent it a frame" if what == "frame" else f"waited for its {what}"
            raise LinkFailure(f"flight software process {p.pid} {death} while the plant "
                              f"{doing}", side="fsw", seq=seq)

    def _fsw_cpu_s(self) -> float | None:
        """CPU seconds the flight-software process the plant started has used (Linux /proc;
        None elsewhere or when it is gone): a stall's reason says whether it ran."""
        p = self.fsw_process
        if p is None:
            return None
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def _fsw_dead(self) -> bool:
        """The flight-software process the plant started has ended (an END to it would only
        wait out its send timeout)."""
        return self.fsw_process is not None and self.fsw_process.poll() is not None

    def _reap(self) -> None:
        """Stop the flight-software process the plant started (it was sent END): a short
        wait, then SIGTERM, then SIGKILL; reaped either way (an interrupted run leaves no
        orphan). A run that ends otherwise leaves this to the launcher's owner."""
        p = self.fsw_process
        if p is None:
            return
        for stop in (None, p.terminate, p.kill):
            if stop is not None:
                try:
                    stop()
                except OSError:
                    pass
            try:
                p.wait(REAP_WAIT_S if stop is None else 2.0)
                return
            except subprocess.TimeoutExpired:
                pass

    def _end(self, ctx: RunContext, seq: int, reason: str, wait_s: float = END_WAIT_S) -> None:
        """END to the flight software, best effort (the peer may be gone): in slices of
        :data:`END_SLICE_S` that look at its process and connection, so that one that
        ends at the same moment (Ctrl-C reaches both processes) costs no full wait."""
        if ctx.retx is not None:  # repeated until the peer's END answers it (bounded)
            ctx.retx.end(seq, reason)
            return
        deadline = time.monotonic() + wait_s
        while True:
            try:
                ctx.link.send_msg(protocol.END, [seq, reason[:500]],
                                  timeout_s=max(0.0, min(END_SLICE_S,
                                                         deadline - time.monotonic())))
                return
            except PeerTimeout:
                if time.monotonic() >= deadline or self._fsw_dead() or ctx.link.peer_gone():
                    return
            except BridgeError:
                return


def run_two_process(cfg: ScenarioConfig, url: str, out_dir: Path, seed: int | None = None,
                    launch: Launcher | None = None, progress: bool = False,
                    hello_timeout_s: float = 60.0, control: bool | str = True,
                    realtime: bool = False, history: str | None = "csv",
                    build: dict | None = None) -> RunResult:
    """The plant side of one run over the link at ``url`` (see :class:`PlantSide`)."""
    return PlantSide(cfg, url, out_dir, seed, launch, progress, hello_timeout_s, control,
                     realtime, history, build=build).run()
