"""The plant's side of a run: handshake, lockstep exchange, history, summary and plot.

Lockstep: the plant sends frame k, waits (bounded) for the command answering k, applies it
and steps. Everything a person needs afterwards lands in the run folder as the run goes:
``history.csv`` (one row per cycle, streamed), then ``summary.json`` and ``descent.png``.
A run that fails -- the peer stalls, dies or talks nonsense -- still writes its summary with
the reason, and keeps the history written so far.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bridge import protocol
from bridge.codec import encode
from bridge.errors import BridgeError, PeerTimeout, ProtocolError, one_line
from bridge.url import open_link
from hil.control import ControlServer, FaultControl
from hil.errors import EXIT_LANDED, EXIT_LINK, EXIT_NOT_LANDED, LinkFailure
from hil.history import HistoryWriter
from hil.scenario import scenario_to_dict
from hil.timing import TIMING_COLUMNS, TimingLog
from plant.config import ScenarioConfig
from plant.lander import GEAR_COLUMNS, Command, LanderPlant, SensorFrame

HISTORY_COLUMNS = [
    "t_s", "seq", "mode",
    "true_x_m", "true_y_m", "true_z_m", "true_vx_mps", "true_vy_mps", "true_vz_mps",
    "true_alt_m", "true_vert_speed_mps", "true_horiz_speed_mps",
    "true_downrange_m", "true_crossrange_m", "true_tilt_deg", "true_rate_dps",
    "mass_kg", "propellant_kg", "throttle_actual",
    "imu_dvx_mps", "imu_dvy_mps", "imu_dvz_mps", "imu_dax_rad", "imu_day_rad", "imu_daz_rad",
    "alt_t_s", "alt_range_m", "alt_valid", "alt_true_range_m",
    # velocimeter sample carried by the frame (plant.velocimeter; empty without one)
    "vel_t_s", "vel_los0_mps", "vel_los1_mps", "vel_los2_mps",
    "vel_range0_m", "vel_range1_m", "vel_range2_m", "vel_valid_mask",
    "nav_x_m", "nav_y_m", "nav_z_m", "nav_vx_mps", "nav_vy_mps", "nav_vz_mps", "nav_alt_m",
    "nav_pos_err_m", "nav_vel_err_mps", "nav_alt_err_m",
    "cmd_throttle", "cmd_tx_nm", "cmd_ty_nm", "cmd_tz_nm", "cmd_flags",
    "compute_us", "round_trip_us",
    "faults",   # sensor faults active during the frame, "altimeter:late;imu:bias" (plant.faults)
    *GEAR_COLUMNS,   # landing gear: legs down, stroke and load per leg (plant.lander)
]

POLL_SLICE_S = 0.25   # how often a wait for the peer checks that its process is alive


@dataclass
class RunResult:
    """What a run produced; ``exit_code`` follows the CLI's table."""

    exit_code: int
    summary: dict = field(default_factory=dict)
    out_dir: Path | None = None


class _Progress:
    """A tqdm bar over sim time that costs nothing per cycle (updated every ~0.5 s sim)."""

    def __init__(self, total_s: float, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=round(total_s), unit="sim s", dynamic_ncols=True, disable=None,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} sim s [{elapsed}, {rate_fmt}] {postfix}")
        self.shown_s = 0.0

    def update(self, t_s: float, mode: str, alt_m: float) -> None:
        if self.bar is not None and t_s - self.shown_s >= 0.5:
            self.bar.update(t_s - self.shown_s)
            self.shown_s = t_s
            self.bar.set_postfix_str(f"{mode} alt {alt_m:,.0f} m", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PlantSide:
    """One run of the plant against a flight software reached through a link."""

    def __init__(self, cfg: ScenarioConfig, url: str, out_dir: Path, seed: int | None = None,
                 fsw_launcher: Callable[[str], subprocess.Popen] | None = None,
                 progress: bool = False, hello_timeout_s: float = 60.0,
                 control: bool | str = True, realtime: bool = False) -> None:
        self.cfg = cfg
        self.url = url
        self.out_dir = Path(out_dir)
        self.seed = cfg.run.seed if seed is None else seed
        self.fsw_launcher = fsw_launcher
        self.fsw_process: subprocess.Popen | None = None
        self.progress = progress
        self.hello_timeout_s = hello_timeout_s
        self.timeout_s = cfg.run.link_timeout_s
        self.realtime = realtime  # pace frames on the wall clock (hil.realtime) vs lockstep
        self.timing: TimingLog | None = None
        # Control channel (hil.control, fsil inject): True = ipc://OUT_DIR/control.sock,
        # a string = that ZeroMQ endpoint (ipc or loopback tcp), False = none.
        self.control = control
        self.control_endpoint: str | None = None

    # --- the run ------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        wall0 = time.monotonic()
        plant = LanderPlant(self.cfg)
        frame = plant.reset(self.seed)
        prop0 = plant.truth()["propellant_kg"]
        self.timing = TimingLog.for_run(self.cfg, self.realtime)
        info: dict = {"fsw_runtime": None, "fsw_software": None}
        failure: LinkFailure | None = None
        cycles = 0
        history_path = self.out_dir / "history.csv"
        bar = _Progress(self.cfg.run.max_sim_time_s, self.progress)
        link = None
        control = self._open_control(plant)
        try:
            link = open_link(self.url, "plant")
            self.url = link.url  # the bound address (a tcp port 0 becomes the real port)
            if self.fsw_launcher is not None:
                self.fsw_process = self.fsw_launcher(self.url)
            columns = HISTORY_COLUMNS + TIMING_COLUMNS if self.realtime else HISTORY_COLUMNS
            with HistoryWriter(history_path, columns) as hist:
                self._handshake(link, plant, info)
                if self.realtime:  # paced on the wall clock; returns with the plant done
                    from hil.realtime import RealtimeLoop
                    frame, cycles = RealtimeLoop(self, link, plant, hist, bar).run(frame)
                while not plant.done:  # lockstep
                    t_send = time.perf_counter_ns()
                    link.send_msg(protocol.FRAME, frame_fields(frame), timeout_s=self.timeout_s)
                    cmd = self._await_command(link, frame.seq)
                    rtt_us = (time.perf_counter_ns() - t_send) // 1000
                    hist.write(self._row(plant, frame, cmd, rtt_us))
                    bar.update(frame.t_us * 1e-6, protocol.MODES[cmd.mode], hist_alt(plant))
                    t_step = time.perf_counter_ns()
                    frame = plant.step(Command(cmd.throttle, tuple(cmd.torque_nm)))
                    self.timing.lockstep(cycles, rtt_us, cmd.compute_us,
                                         (time.perf_counter_ns() - t_step) // 1000)
                    cycles += 1
                self._end(link, frame.seq, plant.outcome.outcome + ": " + plant.outcome.reason)
        except LinkFailure as e:
            failure = e
        except ProtocolError as e:
            failure = LinkFailure(f"bad message from the flight software: {e}", side="fsw",
                                  seq=frame.seq)
        except BridgeError as e:
            failure = LinkFailure(str(e), side="link", seq=frame.seq)
        finally:
            bar.close()
            if link is not None:
                if failure is not None:
                    # "link_failure: ..." (docs/protocol.md, END reasons): the peer exits 3
                    self._end(link, frame.seq,
                              "link_failure: " + str(failure).removeprefix("link failure: "))
                link.close()
            if control is not None:
                control.close()
        wall_s = time.monotonic() - wall0
        if self.realtime:
            cycles = self.timing.cycles  # also when the link failed mid-run
        summary = self._summary(plant, prop0, cycles, wall_s, info, failure, link)
        summary["timing"] = self.timing.report()
        if self.realtime:
            try:
                from hil.timing import plot_timing
                plot_timing(self.timing, self.out_dir / "timing.png",
                            f"{self.cfg.name} seed {self.seed}: timing ({summary['outcome']})")
                summary["files"]["timing_plot"] = "timing.png"
            except Exception as e:  # a plot must never lose the run's results
                summary["timing_plot_error"] = str(e)
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if history_path.exists():
            try:
                from hil.plots import plot_descent
                plot_descent(history_path, self.out_dir / "descent.png",
                             f"{self.cfg.name} seed {self.seed}: {summary['outcome']}")
            except Exception as e:  # a plot must never lose the run's results
                summary["plot_error"] = str(e)
        if failure is not None:
            code = EXIT_LINK
        else:
            code = EXIT_LANDED if summary["outcome"] == "landed" else EXIT_NOT_LANDED
        return RunResult(code, summary, self.out_dir)

    # --- pieces -------------------------------------------------------------------------
    def _open_control(self, plant: LanderPlant) -> FaultControl | None:
        """Serve the control channel; every ``plant.step`` (lockstep or real time) first
        applies at most one waiting request and answers it right after the step."""
        if self.control is False:
            return None
        endpoint = self.control if isinstance(self.control, str) else None
        control = FaultControl(ControlServer(self.out_dir, endpoint))
        self.control_endpoint = control.server.endpoint
        step = plant.step

        def step_with_control(command: Command) -> SensorFrame:
            control.before_step(plant)
            frame = step(command)
            control.after_step(plant, frame)
            return frame

        plant.step = step_with_control  # type: ignore[method-assign]
        return control

    def _handshake(self, link, plant: LanderPlant, info: dict) -> None:
        r = self.cfg.rates
        rates = {"frame_hz": r.frame_hz, "imu_hz": r.imu_hz, "altimeter_hz": r.altimeter_hz,
                 "physics_hz": r.physics_hz}
        payload = encode(protocol.HELLO, ["plant", self.cfg.name, rates, plant.fsw_config()])
        deadline = time.monotonic() + self.hello_timeout_s
        while True:  # the peer may take a while to start: wait in slices, watching it
            try:
                link.send(payload, timeout_s=POLL_SLICE_S)
                break
            except PeerTimeout:
                self._check_fsw_alive(None, "connection")
                if time.monotonic() >= deadline:
                    raise LinkFailure(f"no flight software connected within "
                                      f"{self.hello_timeout_s:g} s", side="fsw",
                                      waited_s=self.hello_timeout_s) from None
        ack = self._wait(link, protocol.HELLO_ACK, self.hello_timeout_s, seq=None,
                         what="HELLO_ACK")
        info["fsw_runtime"] = ack.runtime
        info["fsw_software"] = ack.software

    def _await_command(self, link, seq: int):
        cmd = self._wait(link, protocol.COMMAND, self.timeout_s, seq=seq, what="command")
        if cmd.seq != seq:
            raise LinkFailure(f"command answers seq {cmd.seq}, expected {seq}", side="fsw", seq=seq)
        return cmd

    def _wait(self, link, type_id: int, timeout_s: float, seq: int | None, what: str):
        """Receive one message of ``type_id``, bounded, watching the fsw process if we own it."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                msg = link.recv_msg(max(0.0, min(POLL_SLICE_S, remaining)),
                                    expect=(type_id,))
            except PeerTimeout:
                self._check_fsw_alive(seq, what)
                if time.monotonic() >= deadline:
                    raise LinkFailure(f"no {what} within {timeout_s:g} s", side="fsw",
                                      seq=seq, waited_s=timeout_s) from None
                continue
            if msg.type_id == protocol.END:
                raise LinkFailure(f"flight software ended the run: {one_line(msg.reason)}",
                                  side="fsw", seq=seq)
            return msg

    def _check_fsw_alive(self, seq: int | None, what: str) -> None:
        p = self.fsw_process
        if p is not None and p.poll() is not None:
            raise LinkFailure(f"flight software process {p.pid} exited with code {p.returncode} "
                              f"while the plant waited for its {what}", side="fsw", seq=seq)

    def _end(self, link, seq: int, reason: str) -> None:
        try:
            link.send_msg(protocol.END, [seq, reason[:500]], timeout_s=0.5)
        except BridgeError:
            pass  # best effort: the peer may be gone

    def _row(self, plant: LanderPlant, frame: SensorFrame, cmd, rtt_us: int) -> list:
        t = plant.truth()
        r, v = t["r_m"], t["v_mps"]
        imu = np.sum(np.array(frame.imu), axis=0)[1:] if frame.imu else [math.nan] * 6
        alt = frame.alt
        nav = cmd.nav if cmd.nav is not None else NO_NAV  # a flight software may report none
        pos_err = math.dist(nav[0:3], r)
        vel_err = math.dist(nav[3:6], v)
        return [
            frame.t_us * 1e-6, frame.seq, protocol.MODES[cmd.mode] if cmd.mode < len(protocol.MODES) else cmd.mode,
            *r, *v,
            t["alt_m"], t["vert_speed_mps"], t["horiz_speed_mps"],
            t["downrange_m"], t["crossrange_m"], t["tilt_deg"], t["rate_dps"],
            t["mass_kg"], t["propellant_kg"], t["throttle"],
            *imu,
            alt[0] * 1e-6 if alt else None, alt[1] if alt else None,
            int(bool(alt[2])) if alt else 0, plant.altimeter.last_true_range_m,
            *_vel_cells(frame.vel),
            *nav, pos_err, vel_err, nav[6] - t["alt_m"],
            cmd.throttle, *cmd.torque_nm, cmd.flags,
            cmd.compute_us, rtt_us,
            plant.faults.label(plant.t_us),
            *plant.gear_row(),
        ]

    def _summary(self, plant: LanderPlant, prop0: float, cycles: int, wall_s: float,
                 info: dict, failure: LinkFailure | None, link) -> dict:
        t = plant.truth()
        if failure is not None:
            outcome, reason, touchdown = "link_failure", str(failure), {}
        elif plant.outcome is not None:
            outcome, reason = plant.outcome.outcome, plant.outcome.reason
            touchdown = plant.outcome.touchdown
        else:
            outcome, reason, touchdown = "incomplete", "run stopped before an outcome", {}
        return {
            "outcome": outcome,
            "reason": reason,
            "touchdown": touchdown,
            "propellant_used_kg": prop0 - t["propellant_kg"],
            "propellant_left_kg": t["propellant_kg"],
            "sim_time_s": plant.t_us * 1e-6,
            "wall_time_s": wall_s,
            "cycles": cycles,
            "processes": {"plant_pid": os.getpid(),
                          "fsw_pid": self.fsw_process.pid if self.fsw_process else None},
            "link": self.url,
            "link_stats": dict(link.stats) if link is not None else {},
            "fsw_link_stats": link.peer_stats if link is not None else None,  # its last STATUS
            "fsw_runtime": info.get("fsw_runtime"),
            "fsw_software": info.get("fsw_software"),
            "seed": self.seed,
            "scenario": self.cfg.name,
            "imu": {k: _jsonable(v) for k, v in plant.imu.params.items()},
            "files": {"history": "history.csv", "plot": "descent.png"},
            "faults": plant.faults.summary(),
            "control": self.control_endpoint,
            "config": scenario_to_dict(self.cfg),
        }


def _vel_cells(vel: list | None) -> list:
    """The velocimeter columns: sample time in s, six floats, the valid mask; or empty."""
    if vel is None:
        return [None] * 8
    return [vel[0] * 1e-6, *vel[1:7], int(vel[7])]


NO_NAV = [math.nan] * 7  # the history's nav columns when a command carries no estimate


def frame_fields(frame: SensorFrame) -> list:
    """A SensorFrame as FRAME fields (``vel`` nil without a velocimeter)."""
    return [frame.seq, frame.t_us, frame.imu, frame.alt, getattr(frame, "vel", None)]


def hist_alt(plant: LanderPlant) -> float:
    """Altitude shown on the progress bar (true, above the terrain)."""
    return plant.altitude_m()


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
