"""Signals and a dying child end a run in order (issue 13.4).

``fsil run`` sent SIGINT or SIGTERM mid-run -- over two processes, in one, in real time --
sends END to its flight software, stops and reaps it, removes its temporary folder, writes
summary.json with outcome ``interrupted``, keeps the history, draws descent.png after the
summary when matplotlib is loaded already (it loads in the background as the run starts;
else ``fsil plot RUN`` draws it later, and the one line says so) and exits with
``EXIT_INTERRUPTED`` and one line. A flight-software
child killed with SIGKILL is reported as its death with its exit code. A plant killed with
SIGKILL leaves its history and its provisional summary.json, which its flight-software
child rewrites as ``link_failure`` (naming the plant's death and the last seq) before
removing the link folder fsil made. The time these take is
measured by bench/signals.py, not asserted here (the bounds below only catch a hang).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.engine import run_inprocess, signals
from hil.engine.context import Progress, RunContext
from hil.engine.lockstep import send_watching
from hil.errors import EXIT_INTERRUPTED, EXIT_LINK, Interrupted, LinkFailure
from hil.scenario import load_scenario

# ---------------------------------------------------------------- in this process

@pytest.fixture(scope="module")
def short_cfg():
    cfg = load_scenario("terminal")
    cfg.run.max_sim_time_s = 4.0     # 200 cycles
    return cfg


def _signalling_fsw(at_seq: int, sig: int, hang: bool = False):
    """fsil's flight software that sends this process ``sig`` at frame ``at_seq`` (and then
    never returns from that step, if ``hang``)."""
    from fsw.host.registry import resolve
    inner = resolve("default", load=True).factory

    class Signalling:
        def __init__(self, config):
            self.fsw = inner(config)

        def step(self, frame):
            if frame.seq == at_seq:
                signal.raise_signal(sig)
                while hang:
                    pass
            return self.fsw.step(frame)
    return Signalling


@pytest.mark.parametrize("hang", [False, True], ids=["at-a-safe-point", "in-a-hung-step"])
def test_a_signal_ends_an_inprocess_run_in_order(short_cfg, tmp_path, hang):
    """Noted, then taken at the next cycle (or, the step hung, by the second signal the
    module sends itself): outcome interrupted, exit 130, every recorded row once."""
    with signals.handle_signals():
        r = run_inprocess(short_cfg, 1, fsw=_signalling_fsw(60, signal.SIGTERM, hang),
                          out_dir=tmp_path, plots=False)
    assert r.exit_code == EXIT_INTERRUPTED
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["outcome"] == "interrupted" and s["reason"].startswith("interrupted by SIGTERM")
    assert s["cycles"] == (60 if hang else 61)   # hung: frame 60's step never finished
    rows = (tmp_path / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[1]) for row in rows] == list(range(s["cycles"]))


def test_without_the_handlers_nothing_changes(short_cfg):
    """A library caller (no handle_signals): Python's own SIGINT handling applies. (Set
    explicitly: at load 5 this worker once had another handler in place when it got here,
    left by an earlier test, not found, and the run went on.)"""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            run_inprocess(short_cfg, 1, fsw=_signalling_fsw(5, signal.SIGINT), history=None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not isinstance(e.value, Interrupted)


def test_the_handlers_take_over_an_ignored_sigint_and_forget_it_after():
    """Started with SIGINT ignored (a background job of a non-interactive shell), fsil still
    notes Ctrl-C inside handle_signals (fsil mc looks at noted() between completions); the
    ignored disposition is back after it, and a signal noted there interrupts no later run."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals.handle_signals():
            assert signals.noted() is None
            signal.raise_signal(signal.SIGINT)
            assert signals.noted() == "SIGINT"
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signals.noted() is None
        signals.check()                           # nothing pending any more: no Interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_dead_peer_is_seen_while_sending(tmp_path, short_cfg):
    """A frame the peer never takes (no peer: ZeroMQ blocks the send): the plant checks its
    flight-software process between slices and reports its death, not a stall later."""
    from bridge.url import open_link
    from hil.engine.recorder import HistoryRecorder, NullSink
    from hil.engine.timing import TimingLog
    from plant.lander import LanderPlant

    checks = []

    def dead(seq, what):
        checks.append((seq, what))
        raise LinkFailure(f"flight software process 1 was killed by SIGKILL (exit code -9) "
                          f"while the plant sent it a {what}", side="fsw", seq=seq)

    with open_link(f"zmq+ipc://{tmp_path}/x.sock", "plant") as link:
        ctx = RunContext(short_cfg, 1, LanderPlant(short_cfg), HistoryRecorder(NullSink()),
                         TimingLog.for_run(short_cfg, False), Progress(1.0, False), link=link,
                         check_alive=dead, timeout_s=10.0)
        with pytest.raises(LinkFailure, match="killed by SIGKILL"):
            send_watching(ctx, b"frame", 7, "frame")
    assert checks == [(7, "frame")]


# ---------------------------------------------------------------- through the command line

REPO = Path(__file__).resolve().parents[1]
FSIL = [sys.executable, "-m", "hil.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HANG_S = 120.0     # only a hang exceeds this (4 runs drawing plots at once, load 11: 35 s)


def _start(out: Path, *extra: str, session: bool = False) -> subprocess.Popen:
    return subprocess.Popen([*FSIL, "run", "--scenario", "nominal", "--out", str(out),
                             "--no-progress", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO,
                            start_new_session=session)


def _children(pid: int) -> list[int]:
    """The process's children but its history writer (hil.engine.writer, a session of its
    own: a terminal's Ctrl-C does not reach it; the run ends it)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    out = []
    for p in text.split():
        try:
            if b"hil.engine.writer" in Path(f"/proc/{p}/cmdline").read_bytes():
                continue
        except OSError:
            pass
        out.append(int(p))
    return out


def _as_they_get_going(started: list, rows: int = 120):
    """Each started run as soon as it is well under way (its history has ``rows`` rows on
    disk), whichever comes first: a run left waiting could land before its signal."""
    pending, deadline = list(started), time.monotonic() + 120 + 30 * len(started)
    while pending:
        for item in list(pending):
            out, proc = item[2], item[3]
            assert proc.poll() is None, proc.communicate()
            hist = out / "history.csv"
            if hist.exists() and hist.stat().st_size > rows * 400:
                pending.remove(item)
                yield item
        if time.monotonic() > deadline:
            pytest.fail("the runs did not get going")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie is not: it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


MODES = {                    # plots only in real time: enough to show an interrupted run's
    "two_process": ("--no-plot",),      # (its timing is bench/signals.py's business)
    "ctrl_c": ("--no-plot",),  # two processes, SIGINT to the whole process group (Ctrl-C)
    "inprocess": ("--inprocess", "--no-plot"),
    "realtime": ("--realtime",),
    "plant": ("--no-plot",),
}


CASES = [("two_process", signal.SIGINT), ("inprocess", signal.SIGTERM),
         ("realtime", signal.SIGTERM), ("ctrl_c", signal.SIGINT),
         ("two_process", signal.SIGKILL),   # kill -9 of the flight software child
         ("plant", signal.SIGKILL)]         # kill -9 of the plant (fsil run itself)


@pytest.fixture(scope="module")
def ended(tmp_path_factory) -> dict:
    """Every case at once (one start-up cost): each run is signalled when it is under way
    (SIGKILL goes to its flight-software child; Ctrl-C to both: the child may end the link
    first, the run is still interrupted); what each left behind, by case."""
    base = tmp_path_factory.mktemp("signals")
    started = []
    for mode, sig in CASES:
        out = base / f"{mode}-{sig.name}"
        started.append((mode, sig, out, _start(out, *MODES.get(mode, ()),
                                               session=mode == "ctrl_c")))
    runs, spawned = {}, []
    try:
        for mode, sig, out, proc in _as_they_get_going(started):
            children = _children(proc.pid)
            spawned += children
            assert (len(children) == 1) == (mode != "inprocess"), (mode, children)
            if mode == "ctrl_c":       # the terminal signals the plant and its child at once
                os.killpg(proc.pid, sig)
            elif mode == "plant":
                os.kill(proc.pid, sig)
            else:
                os.kill(children[0] if sig == signal.SIGKILL else proc.pid, sig)
            runs[(mode, sig)] = (out, proc, children)
        for key, (out, proc, children) in runs.items():
            stdout, stderr = proc.communicate(timeout=HANG_S)
            stderr += stdout[-300:]
            deadline = time.monotonic() + HANG_S   # a killed plant's child is not ours to wait
            while any(_alive(c) for c in children) and time.monotonic() < deadline:
                time.sleep(0.05)
            runs[key] = (out, proc.returncode, stderr, children)
    finally:
        for _, _, _, proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for pid in spawned:              # nothing outlives the module
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    return runs


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode,sig", CASES[:4], ids=lambda v: getattr(v, "name", v))
def test_sigint_and_sigterm_end_the_run_in_order(ended, mode, sig):
    out, code, stderr, children = ended[(mode, sig)]
    assert code == EXIT_INTERRUPTED, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("fsil")]
    assert len(lines) == 1 and lines[0].startswith(f"fsil: interrupted by {sig.name} at seq")
    drawn = s_plot = json.loads((out / "summary.json").read_text())["files"]["plot"]
    # only real time loads matplotlib before its loop; it skips the plot when its write-out
    # reached it later than PLOT_AFTER_SIGNAL_S after the signal (a heavily loaded machine)
    assert not drawn or mode == "realtime"
    timing_missing = mode == "realtime"            # timing.png: only with fsil plot
    assert lines[0].endswith(f"plot it with: fsil plot {out}") == (not drawn or timing_missing)
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "interrupted", s["reason"]
    assert sig.name in s["reason"] and "seq" in s["reason"]
    assert s["engine"] == ("inprocess" if mode == "inprocess" else "two_process")
    assert s["build"]["version"] and s["build"]["command"][:2] == ["fsil", "run"]
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) - 1 == s["cycles"] > 50
    assert (out / "descent.png").exists() == (s_plot == "descent.png")
    if drawn:
        assert (out / "descent.png").read_bytes()[:4] == b"\x89PNG"
    assert not s.get("provisional")
    for pid in children:             # the flight software: ended (and reaped: no orphan)
        assert not _alive(pid), pid
    if mode != "inprocess":
        link = s["link"]
        assert link.startswith("zmq+ipc:///tmp/fsil-")
        assert not Path(link[len("zmq+ipc://"):]).parent.exists()
        log = (out / "fsw.log").read_text()
        assert "interrupted" in log      # the flight software got END "interrupted: ..."


@pytest.mark.timeout(240)
def test_fsw_child_killed_is_reported_as_its_death(ended):
    """kill -9 of the flight software fsil run started: the reason names its death and exit
    code (whether the plant was sending a frame or waiting for a command), exit 3."""
    out, code, stderr, (child,) = ended[("two_process", signal.SIGKILL)]
    assert code == EXIT_LINK, stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "link_failure"
    assert f"process {child} was killed by SIGKILL (exit code -9)" in s["reason"], s["reason"]
    assert "no command within" not in s["reason"]
    assert not _alive(child)


@pytest.mark.timeout(240)
def test_fsil_plot_draws_an_interrupted_runs_plots_afterwards(ended):
    """``fsil plot RUN``: descent.png (and timing.png of a real-time run) from the folder."""
    from hil import cli
    for mode, names in (("two_process", ("descent.png",)),
                        ("realtime", ("descent.png", "timing.png"))):
        out = ended[(mode, signal.SIGINT if mode == "two_process" else signal.SIGTERM)][0]
        assert cli.main(["plot", str(out)]) == 0
        for name in names:
            assert (out / name).read_bytes()[:4] == b"\x89PNG"
        s = json.loads((out / "summary.json").read_text())
        assert s["outcome"] == "interrupted" and s["files"]["plot"] == "descent.png"


@pytest.mark.timeout(240)
def test_a_killed_plant_leaves_its_provisional_summary_and_no_link_folder(ended, capsys):
    """kill -9 of ``fsil run``: the summary written at the start names what happened, the
    history written so far is kept, the flight-software child sees the plant gone, exits 3
    and removes the link folder fsil made (its marker names the dead plant)."""
    out, code, stderr, (child,) = ended[("plant", signal.SIGKILL)]
    assert code == -signal.SIGKILL
    assert not _alive(child)
    s = json.loads((out / "summary.json").read_text())
    # Rewritten by the flight-software child from the provisional one (hil.link_dir).
    assert s["outcome"] == "link_failure" and s["provisional"] is True, s["reason"]
    assert s["recorded_by"] == "fsw" and s["processes"]["fsw_pid"] == child
    plant = s["processes"]["plant_pid"]
    rows = len((out / "history.csv").read_text().splitlines()) - 1
    assert s["reason"].startswith(f"link failure: the plant process (pid {plant}) died after "
                                  f"seq {s['last_seq']} (the last frame it sent)"), s["reason"]
    assert rows <= s["last_seq"] + 1 and "recorded by the flight-software process" in s["reason"]
    assert s["scenario"] == "nominal" and s["seed"] == 1 and s["engine"] == "two_process"
    assert s["build"]["command"][:2] == ["fsil", "run"]
    link = Path(s["link"][len("zmq+ipc://"):])
    assert link.parent.name.startswith("fsil-") and not link.parent.exists()
    assert len((out / "history.csv").read_text().splitlines()) > 50
    assert "link failure" in (out / "fsw.log").read_text()
    from hil import cli            # the folder is refused by compare in one line, exit 2
    assert cli.main(["compare", str(out), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "incomplete" in err and "fsil plot" in err
    assert cli.main(["mc", "report", str(out)]) == 2   # fsil mc names what the folder is
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a campaign folder" in err and "link_failure" in err


def test_a_killed_plants_summary_is_rewritten_only_when_it_is_that_plants(tmp_path,
                                                                            monkeypatch):
    """record_plant_death: only the provisional summary naming the dead plant's pid, in a
    real folder, through no symbolic link; anything else is left as it is."""
    from hil import link_dir
    run = tmp_path / "run"
    run.mkdir()
    provisional = {"outcome": "incomplete", "provisional": True, "reason": "killed?",
                   "processes": {"plant_pid": 4242, "fsw_pid": None}}
    (run / "summary.json").write_text(json.dumps(provisional))
    monkeypatch.setenv(link_dir.RUN_DIR_ENV, str(run))
    assert not link_dir.record_plant_death(4343, 7)               # another plant's run
    finished = dict(provisional, outcome="landed", provisional=False)
    (run / "summary.json").write_text(json.dumps(finished))
    assert not link_dir.record_plant_death(4242, 7)               # the plant's own end
    (tmp_path / "elsewhere.json").write_text(json.dumps(provisional))
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to(tmp_path / "elsewhere.json")
    assert not link_dir.record_plant_death(4242, 7)               # a link is not followed
    (run / "summary.json").unlink()
    (tmp_path / "linked").symlink_to(run)
    (run / "summary.json").write_text(json.dumps(provisional))
    monkeypatch.setenv(link_dir.RUN_DIR_ENV, str(tmp_path / "linked"))
    assert not link_dir.record_plant_death(4242, 7)
    monkeypatch.setenv(link_dir.RUN_DIR_ENV, "run")               # relative: refused
    assert not link_dir.record_plant_death(4242, 7)
    assert json.loads((run / "summary.json").read_text()) == provisional
    monkeypatch.setenv(link_dir.RUN_DIR_ENV, str(run))
    assert link_dir.record_plant_death(4242, 7)
    s = json.loads((run / "summary.json").read_text())
    assert s["outcome"] == "link_failure" and s["last_seq"] == 7 and s["recorded_by"] == "fsw"
    assert s["processes"] == {"plant_pid": 4242, "fsw_pid": os.getpid()}
    assert "pid 4242) died after seq 7" in s["reason"]
    assert sorted(p.name for p in run.iterdir()) == ["summary.json"]   # no temporary left


# ---------------------------------------------------------------- the pieces, in process

def test_the_provisional_summary_is_there_while_the_run_goes(short_cfg, tmp_path):
    """summary.json says ``incomplete`` from the start (what a killed plant leaves) and the
    end replaces it whole."""
    from fsw.host.registry import resolve
    inner, seen = resolve("default", load=True).factory, []

    class Peeking:
        def __init__(self, config):
            self.fsw = inner(config)

        def step(self, frame):
            if frame.seq == 10:
                seen.append(json.loads((tmp_path / "summary.json").read_text()))
            return self.fsw.step(frame)

    r = run_inprocess(short_cfg, 4, fsw=Peeking, out_dir=tmp_path, plots=False, build={"v": 1})
    (early,) = seen
    assert early["outcome"] == "incomplete" and early["provisional"] is True
    assert early["seed"] == 4 and early["scenario"] == short_cfg.name
    assert early["engine"] == "inprocess" and early["build"] == {"v": 1}
    final = json.loads((tmp_path / "summary.json").read_text())
    assert final["outcome"] == r.summary["outcome"] == "timeout" and "provisional" not in final
    assert not list(tmp_path.glob("summary.json.tmp"))


def _link_folder(monkeypatch, plant_pid: int) -> tuple[Path, str]:
    from hil import link_dir
    folder = Path(link_dir.make_link_dir())
    (folder / link_dir.MARKER).write_text(f"fsil link folder\nplant pid {plant_pid}\n")
    (folder / link_dir.SOCKET_NAME).write_bytes(b"")
    monkeypatch.setenv(link_dir.LINK_DIR_ENV, str(folder))
    return folder, f"zmq+ipc://{folder}/{link_dir.SOCKET_NAME}"


def test_the_child_removes_only_the_link_folder_of_a_dead_plant(monkeypatch, tmp_path):
    """hil.link_dir: removed when its marker names a plant that is gone (not this process's
    parent); kept while the plant lives, with anything else in it, for another URL, or
    without the marker."""
    import shutil

    from hil.link_dir import LINK_DIR_ENV, MARKER, remove_if_orphaned
    dead = 2 ** 22 + 12345              # above pid_max's default: never our parent
    folder, url = _link_folder(monkeypatch, os.getppid())
    try:
        assert not remove_if_orphaned(url)                       # the plant is alive
        assert not remove_if_orphaned(url.replace("link.sock", "other.sock"))
        (folder / MARKER).write_text(f"fsil link folder\nplant pid {dead}\n")
        (folder / "user.txt").write_text("not fsil's")
        assert not remove_if_orphaned(url) and folder.exists()  # something else in it
        (folder / "user.txt").unlink()
        monkeypatch.setenv(LINK_DIR_ENV, str(tmp_path))          # not the link's folder
        assert not remove_if_orphaned(url)
        monkeypatch.setenv(LINK_DIR_ENV, str(folder))
        (folder / MARKER).unlink()
        assert not remove_if_orphaned(url) and folder.exists()  # no marker: not fsil's
        (folder / MARKER).write_text(f"fsil link folder\nplant pid {dead}\n")
        assert remove_if_orphaned(url) and not folder.exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    user = tmp_path / "fsil-mine"        # a user's own folder, even fsil-named, with a marker
    user.mkdir()
    (user / MARKER).write_text(f"fsil link folder\nplant pid {dead}\n")
    monkeypatch.setenv(LINK_DIR_ENV, str(user))
    assert not remove_if_orphaned(f"zmq+ipc://{user}/link.sock") and user.exists()


def test_history_text_columns_read_as_text(tmp_path):
    """read_history: the faults column, empty for thousands of rows then set, is read
    without pandas' mixed-type DtypeWarning."""
    import warnings

    from hil.engine.schema import HISTORY_COLUMNS
    from hil.history import read_history
    i = HISTORY_COLUMNS.index("faults")
    rows = [",".join("1" if j != i else ("altimeter:late" if k > 150_000 else "")
                     for j in range(len(HISTORY_COLUMNS))) for k in range(150_010)]
    path = tmp_path / "history.csv"
    path.write_text(",".join(HISTORY_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = read_history(path)
    assert df["faults"].iloc[-1] == "altimeter:late" and len(df) == 150_010


@pytest.mark.timeout(240)
def test_a_separately_started_fsw_that_dies_is_seen_by_the_plant(tmp_path):
    """``fsil plant`` + ``fsil fsw`` started apart: a local process that connects to the
    plant's socket and leaves again changes nothing (the run goes on), and the flight
    software's kill -9 is reported as its connection closing -- not as a stall after
    ``--timeout`` (60 s here; only a hang reaches HANG_S)."""
    import zmq
    sock, out = tmp_path / "link.sock", tmp_path / "run"
    url = f"zmq+ipc://{sock}"
    plant = subprocess.Popen([*FSIL, "plant", "--link", url, "--out", str(out), "--timeout",
                              "60", "--no-progress"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    fsw = subprocess.Popen([*FSIL, "fsw", "--link", url, "--quiet"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=ENV, cwd=REPO)
    try:
        def rows() -> int:
            hist = out / "history.csv"
            return hist.stat().st_size // 400 if hist.exists() else 0

        deadline = time.monotonic() + HANG_S
        while rows() < 50:
            assert plant.poll() is None and fsw.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        ctx = zmq.Context()                 # a stranger connects, and leaves
        stranger = ctx.socket(zmq.PAIR)
        stranger.connect(f"ipc://{sock}")
        time.sleep(0.5)
        stranger.close(linger=0)
        ctx.term()
        seen = rows()
        while rows() < seen + 50:            # ... the run goes on well past it
            assert plant.poll() is None, plant.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        fsw.kill()
        fsw.wait()
        _, stderr = plant.communicate(timeout=HANG_S)
    finally:
        for p in (plant, fsw):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert plant.returncode == EXIT_LINK, stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "link_failure"
    assert "connection closed" in s["reason"] and "within" not in s["reason"], s["reason"]


def test_an_interrupted_run_plots_only_early_enough_after_the_signal(monkeypatch):
    """The write-out's budget: the descent plot of an interrupted run is started only within
    PLOT_AFTER_SIGNAL_S of the signal (matplotlib loaded), so the exit stays within 2 s."""
    import time as _time
    from hil import plots
    from hil.engine import signals, summary
    from hil.errors import Interrupted
    monkeypatch.setattr(plots, "prefetched", lambda: True)
    previous = signal.getsignal(signal.SIGINT)
    with signals.handle_signals():
        assert signals.seconds_since_signal() is None
        monkeypatch.setattr(signals.STATE, "pending", "SIGINT")
        monkeypatch.setattr(signals.STATE, "noted_at", _time.monotonic())
        assert summary._draw_now(Interrupted("SIGINT"))
        monkeypatch.setattr(signals.STATE, "noted_at",
                            _time.monotonic() - summary.PLOT_AFTER_SIGNAL_S - 0.01)
        assert not summary._draw_now(Interrupted("SIGINT"))
        monkeypatch.setattr(plots, "prefetched", lambda: False)
        monkeypatch.setattr(signals.STATE, "noted_at", _time.monotonic())
        assert not summary._draw_now(Interrupted("SIGINT"))
    assert signal.getsignal(signal.SIGINT) is previous and signals.seconds_since_signal() is None
