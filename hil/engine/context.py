"""What a run's loops work with: one explicit :class:`RunContext`, and the :class:`RunResult`.

The context holds the plant, the link to the flight software (``None`` in process), the
history recorder, the timing log, the fault-control channel, the progress bar, the
liveness check of the flight-software process and the timeouts. The loops
(:mod:`hil.engine.lockstep`, :mod:`hil.engine.realtime`) touch nothing else; the fault
control is applied by :meth:`RunContext.step` around every plant step, explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plant.config import ScenarioConfig
from plant.lander import Command, LanderPlant, SensorFrame

from hil.engine.recorder import History, HistoryRecorder
from hil.engine.timing import TimingLog


def hello_rates(cfg: ScenarioConfig) -> dict:
    """The HELLO's rates (``RATES_SCHEMA``): the four always sent, and the velocimeter's and
    the star tracker's sample rates when the scenario fits them."""
    r = cfg.rates
    rates = {"frame_hz": r.frame_hz, "imu_hz": r.imu_hz, "altimeter_hz": r.altimeter_hz,
             "physics_hz": r.physics_hz}
    if cfg.velocimeter.enabled:
        rates["velocimeter_hz"] = cfg.velocimeter.rate_hz
    if cfg.star_tracker.enabled:
        rates["star_tracker_hz"] = cfg.star_tracker.rate_hz
    return rates


@dataclass
class RunResult:
    """What a run produced: ``exit_code`` per hil.errors' table, the summary (also in
    ``OUT_DIR/summary.json`` when there is a run folder), and the history when kept in
    memory (``history="memory"``)."""

    exit_code: int
    summary: dict = field(default_factory=dict)
    out_dir: Path | None = None
    history: History | None = None


class Progress:
    """A tqdm bar over sim time that costs nothing per cycle (updated every ~0.5 s sim)."""

    def __init__(self, total_s: float, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=round(total_s), unit="sim s", dynamic_ncols=True, disable=None,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} sim s [{elapsed}, "
                                       "{rate_fmt}] {postfix}")
        self.shown_s = 0.0

    def update(self, t_s: float, mode: str, alt_m: float) -> None:
        if self.bar is not None and t_s - self.shown_s >= 0.5:
            self.bar.update(t_s - self.shown_s)
            self.shown_s = t_s
            self.bar.set_postfix_str(f"{mode} alt {alt_m:,.0f} m", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _alive(seq: int | None, what: str) -> None:
    """The liveness check when no flight-software process is watched: nothing to check."""


@dataclass
class RunContext:
    """Everything one run's loop needs, passed explicitly.

    ``check_alive(seq, what)`` raises :class:`hil.errors.LinkFailure` if the watched
    flight-software process has died (``what``: what the plant was waiting for);
    ``timeout_s`` bounds every wait for the peer, ``hello_timeout_s`` the handshake.
    """

    cfg: ScenarioConfig
    seed: int
    plant: LanderPlant
    recorder: HistoryRecorder
    timing: TimingLog
    progress: Progress
    link: Any = None                     # bridge.link.Link, or None in process
    control: Any = None                  # hil.engine.control.FaultControl, or None
    check_alive: Callable[[int | None, str], None] = _alive
    timeout_s: float = 10.0
    hello_timeout_s: float = 60.0
    out_dir: Path | None = None
    frame: SensorFrame | None = None     # the frame of the current cycle (its seq for END)
    retx: Any = None                     # hil.retransmit.Retransmitter on a lossy link (serial)

    def step(self, command: Command) -> SensorFrame:
        """One plant step with the fault-control channel served around it: a waiting
        request is applied just before the step and answered just after."""
        control = self.control
        if control is None:
            return self.plant.step(command)
        control.before_step(self.plant)
        frame = self.plant.step(command)
        control.after_step(self.plant, frame)
        return frame
