"""A run with the plant and the flight software in one process: no link, same history.

``run_inprocess(cfg, seed, fsw="default")`` builds the plant, hands the flight software the
same HELLO config the link would carry (encoded and decoded by the codec, so it sees
exactly what a two-process run gives it), then calls ``fsw.step(frame)`` once per frame
through the contract checker (fsw/host/checked.py, as the host runner does): the answer
comes back as the codec would deliver it, so the history is the two-process history bit
for bit, wall-clock columns aside. A contract break -- no ``step``, a wrong shape, an
exception in ``step``, a non-finite throttle -- ends the run with one line naming the
class, the cycle and the problem: outcome ``fsw_fault`` (the END word a runner would send),
exit 3, the history and summary kept.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bridge import protocol
from bridge.codec import decode, encode
from fsw.frame import Frame
from fsw.host.checked import CheckedFsw, ContractViolation
from fsw.host.registry import FswEntry, resolve
from plant.config import ScenarioConfig
from plant.lander import LanderPlant

import hil.engine.signals as signals
from hil.engine.context import Progress, RunContext, RunResult, hello_rates
from hil.engine.lockstep import run_inprocess_loop
from hil.engine.recorder import HistoryRecorder
from hil.engine.writer import open_history
from hil.engine.schema import columns
from hil.engine.summary import build_summary, finish, history_file, write_provisional
from hil.engine.timing import TimingLog
from hil.errors import ConfigError, HilError, HistoryWriterFailure, Interrupted

FswSpec = str | FswEntry | Callable[[dict], Any]


def run_inprocess(cfg: ScenarioConfig, seed: int | None = None, fsw: FswSpec = "default",
                  out_dir: str | os.PathLike[str] | None = None, history: str | None = "csv",
                  progress: bool = False, control: bool | str = False,
                  plots: bool = True, build: dict | None = None) -> RunResult:
    """One run in this process; see the module docstring.

    ``fsw``: ``"default"``, ``"legacy"``, a registry spec (``MODULE:CLASS``,
    ``PATH.py:CLASS``, an entry point) or a factory ``callable(config) -> fsw object``.
    ``out_dir``: the run folder (history, summary.json, descent.png), or None to write
    nothing. ``history``: ``"csv"``, ``"parquet"``, ``"memory"`` (in ``RunResult.history``)
    or None. ``control``: serve the fault-control channel (``fsil inject``) as
    :class:`hil.engine.two_process.PlantSide` does (needs ``out_dir`` for the default).
    ``build``: summary.json's ``build`` block (version, commit, command line).
    """
    wall0 = time.monotonic()
    seed = cfg.run.seed if seed is None else seed
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    entry = fsw_entry(fsw)
    plant = LanderPlant(cfg)
    frame = plant.reset(seed)
    prop0 = plant.truth()["propellant_kg"]
    sink = open_history(history, out, columns(False))
    plotting = plots and out is not None
    if plotting:   # matplotlib loaded early, so that even an interrupted run plots
        from hil.plots import prefetch
        prefetch()
    ctx = RunContext(cfg, seed, plant, HistoryRecorder(sink, plot_tap=plotting),
                     TimingLog.for_run(cfg, False),
                     Progress(cfg.run.max_sim_time_s, progress), out_dir=out, frame=frame)
    info: dict = {"engine": "inprocess", "fsw_runtime": _runtime(), "fsw_software": None,
                  "history_file": history_file(sink), "link": None, "link_stats": {},
                  "processes": {"plant_pid": os.getpid(), "fsw_pid": os.getpid()},
                  "control": None, "build": build}
    if out is not None:   # replaced at the end; what a killed process leaves (incomplete)
        write_provisional(out, cfg, seed, info)
    failure: HilError | Interrupted | None = None
    try:
        with signals.armed():   # SIGINT/SIGTERM end the run in order (hil.engine.signals)
            if control is not False:
                ctx.control = _open_control(out, control)
                info["control"] = ctx.control.server.endpoint
            checked = CheckedFsw(entry, _hello_config(cfg, plant))
            info["fsw_software"] = checked.software
            run_inprocess_loop(ctx, _caller(checked), frame)
    except (ContractViolation, Interrupted, HistoryWriterFailure) as e:
        failure = e
    finally:
        ctx.progress.close()
        try:
            ctx.recorder.close()
        finally:
            if ctx.control is not None:
                ctx.control.close()
    if failure is None:   # a history writer that failed as the history was closed
        failure = ctx.recorder.failure
    summary = build_summary(ctx, prop0, time.monotonic() - wall0, info, failure,
                            failure_outcome="fsw_fault")
    return finish(ctx, summary, failure, plots=plots)


# ----------------------------------------------------------------------------- the fsw
def fsw_entry(spec: FswSpec) -> Any:
    """What :class:`fsw.host.checked.CheckedFsw` constructs: a registry entry for a spec
    (imported now, so a bad spec is one configuration line), or a factory callable."""
    if isinstance(spec, FswEntry):
        return spec
    if isinstance(spec, str):
        return resolve(spec, load=True)
    if callable(spec):
        return SimpleNamespace(label=getattr(spec, "__name__", type(spec).__name__),
                               factory=spec)
    raise ConfigError(f"fsw: expected a name, MODULE:CLASS, PATH.py:CLASS or a factory, "
                      f"got {spec!r}")


def _caller(checked: CheckedFsw) -> Callable:
    """``call(frame) -> (mode, throttle, torque_nm, nav, flags)``: the plant's frame as the
    link would deliver it (lists, a float range, a bool validity), the answer checked."""
    step = checked.step

    def call(frame) -> tuple:
        alt, vel, att = frame.alt, frame.vel, frame.att
        if alt is not None:
            alt = [alt[0], float(alt[1]), bool(alt[2])]
        if vel is not None:
            vel = list(vel)
        if att is not None:
            att = [int(att[0]), float(att[1]), float(att[2]), float(att[3]), float(att[4]),
                   bool(att[5])]
        throttle, torque, mode, nav, flags = step(Frame(frame.seq, frame.t_us, frame.imu,
                                                        alt, vel, att))
        return mode, throttle, tuple(torque), nav, flags
    return call


# ----------------------------------------------------------------------------- helpers
def _hello_config(cfg: ScenarioConfig, plant: LanderPlant) -> dict:
    """The config map exactly as the flight software gets it over a link."""
    return decode(encode(protocol.HELLO, ["plant", cfg.name, hello_rates(cfg),
                                          plant.fsw_config()])).config


def _open_control(out: Path | None, control: bool | str):
    from hil.engine.control import ControlServer, FaultControl
    endpoint = control if isinstance(control, str) else None
    if out is None and endpoint is None:
        raise ConfigError("the control channel needs a run folder (out_dir) or an endpoint")
    return FaultControl(ControlServer(out if out is not None else Path("."), endpoint))


def _runtime() -> str:
    v = sys.implementation.version
    return f"{sys.implementation.name} {v.major}.{v.minor}.{v.micro}"
