"""A campaign on Dask: submit the runs, stream their rows to disk, resume what was started.

The campaign folder::

    campaign.json        what decides the results: scenario (with [dispersions]), seed,
                         flight software, link; the run count
    runs.jsonl           one JSON row per finished run, appended as each arrives (the journal:
                         a killed campaign keeps every finished run; the same command resumes)
    histories/           run-NNNNNN.parquet: the failed runs and the chosen others
    runs.parquet         the rows in run order (written from the journal at the end)
    summary.json         counts, success rate and its interval (hil.mc.stats)
    report.md + *.png    hil.mc.report

The client holds at most a window of in-flight runs (a few per worker) and no results:
its memory does not grow with the number of runs while they run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from hil.engine import signals
from hil.errors import ConfigError, LinkFailure
from hil.mc.task import RESULT_COLUMNS, CampaignSpec, run_one

FORMAT = 1
JOURNAL = "runs.jsonl"
WINDOW_PER_WORKER = 2
POLL_S = 0.05        # how often the loop looks for a finished run or a noted signal


class CampaignError(ConfigError):
    """A campaign folder or request that cannot go on (exit 2)."""


@dataclass
class Progress:
    """What the campaign has done so far (for the bar and the caller)."""

    runs: int
    done: int = 0
    landed: int = 0
    new: int = 0                    # finished by this invocation
    interrupted: bool = False
    signal: str | None = None       # the signal that interrupted it ("SIGINT"), if one did


# ---------------------------------------------------------------- the folder


def prepare(out_dir: Path, spec: CampaignSpec, runs: int, keep: int) -> set[int]:
    """Create or check the campaign folder; returns the runs already finished.

    A folder holding another campaign (other scenario, seed, flight software or link) is an
    error; more runs than before extend it; fewer would drop results and are an error.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "campaign.json"
    meta = {"format": FORMAT, "name": spec.scenario.get("name"), "digest": spec.digest,
            "seed": spec.seed, "fsw": spec.fsw, "two_process": spec.two_process,
            "runs": runs, "keep_histories": keep, "scenario": spec.scenario}
    if meta_path.exists():
        old = load_meta(out_dir)
        if old.get("digest") != spec.digest:
            what = [k for k in ("name", "seed", "fsw", "two_process") if old.get(k) != meta[k]]
            raise CampaignError(
                f"{out_dir} holds another campaign ({', '.join(what) or 'scenario'} "
                f"differ{'s' if len(what) <= 1 else ''}); give another --out to start a new one")
        if runs < old["runs"]:
            raise CampaignError(f"{out_dir} holds a campaign of {old['runs']} runs; --runs "
                                f"{runs} would leave some out (give --runs {old['runs']} or more)")
        meta["keep_histories"] = old.get("keep_histories", keep)
    _write_json(meta_path, meta)
    (out_dir / "histories").mkdir(exist_ok=True)
    return {row["run"] for row in read_journal(out_dir) if row["run"] < runs}


def load_meta(out_dir: Path) -> dict:
    """campaign.json of a campaign folder (CampaignError if there is none)."""
    path = Path(out_dir) / "campaign.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        run = _run_outcome(Path(out_dir))
        raise CampaignError(f"{out_dir} is not a campaign folder (no campaign.json)"
                            + (f"; it is a run folder ({run})" if run else "")) from None
    except (OSError, ValueError) as e:
        raise CampaignError(f"{path}: unreadable ({e})") from None
    if meta.get("format") != FORMAT:
        raise CampaignError(f"{path}: format {meta.get('format')!r}; this fsil reads {FORMAT}")
    return meta


def _run_outcome(folder: Path) -> str | None:
    """"outcome: reason" of a run folder's summary.json (None if it is not one)."""
    try:
        s = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(s, dict) or "outcome" not in s or "runs_done" in s:
        return None
    return f"{s['outcome']}: {s.get('reason', '')}"


def spec_of(meta: dict) -> CampaignSpec:
    return CampaignSpec(meta["scenario"], int(meta["seed"]), meta["fsw"], bool(meta["two_process"]))


def read_journal(out_dir: Path) -> Iterator[dict]:
    """The journal's rows, first of each run only; a partial last line is ignored."""
    path = Path(out_dir) / JOURNAL
    if not path.exists():
        return
    seen: set[int] = set()
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return
            row = json.loads(line)
            if row["run"] not in seen:
                seen.add(row["run"])
                yield row


class Journal:
    """Append-only rows, one JSON line each, flushed per row."""

    def __init__(self, out_dir: Path) -> None:
        path = Path(out_dir) / JOURNAL
        if path.exists():  # cut a partial last line (a campaign killed mid-write)
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with path.open("r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
        self._file = path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row, default=_jsonable) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def kept(run: int, runs: int, keep: int) -> bool:
    """Is ``run`` one of the ``keep`` runs whose history is kept even when it lands?
    (evenly spaced from run 0; the failed runs are always kept)."""
    if keep <= 0:
        return False
    step = max(1, runs // keep)
    return run % step == 0 and run // step < keep


# ---------------------------------------------------------------- Dask


def open_client(workers: int | None, scheduler: str | None):
    """A Dask client: on ``scheduler`` (or $DASK_SCHEDULER_ADDRESS) if given, else on a new
    LocalCluster with ``workers`` worker processes (default: one per core), one thread each.
    Returns ``(client, cluster or None)``."""
    from distributed import Client, LocalCluster
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        try:
            return Client(address, timeout=15), None
        except (OSError, TimeoutError) as e:
            raise LinkFailure(f"no Dask scheduler at {address}: {e}", side="scheduler") from None
    n = workers or os.cpu_count() or 1
    # The worker processes start with SIGINT ignored (inherited across exec): Ctrl-C goes
    # to this process alone, which stops the campaign and closes the cluster in order.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               silence_logs=logging.CRITICAL, memory_limit=0)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return Client(cluster), cluster


def close_client(client, cluster) -> None:
    try:
        client.close(timeout=10)
    finally:
        if cluster is not None:
            cluster.close(timeout=10)


def run_campaign(out_dir: Path, spec: CampaignSpec, runs: int, *, keep: int = 10,
                 client=None, workers: int | None = None, scheduler: str | None = None,
                 progress: bool = True,
                 on_row: Callable[[dict], None] | None = None) -> Progress:
    """Run the runs of ``spec`` not yet in ``out_dir``; returns what was done.

    ``client``: an open Dask client to use (else one is opened and closed here).
    Ctrl-C stops the campaign and keeps every finished run (``Progress.interrupted``): under
    :func:`hil.engine.signals.handle_signals` (``fsil mc``) SIGINT and SIGTERM are noted and
    the loop stops at its next look (every :data:`POLL_S` while it waits for a run); for a
    library caller without it, Python's KeyboardInterrupt does the same.
    """
    done = prepare(out_dir, spec, runs, keep)
    keep = load_meta(out_dir)["keep_histories"]
    state = Progress(runs, done=len(done),
                     landed=sum(1 for r in read_journal(out_dir)
                                if r["run"] < runs and r["outcome"] == "landed"))
    todo = iter([k for k in range(runs) if k not in done])
    own = client is None
    cluster = None
    bar = _bar(state, progress)
    journal = Journal(out_dir)
    try:
        if own:
            client, cluster = open_client(workers, scheduler)
        _loop(client, spec, runs, keep, todo, state, journal, out_dir, bar, on_row)
    except KeyboardInterrupt as e:
        state.interrupted = True
        state.signal = getattr(e, "signal_name", None)
    finally:
        journal.close()
        if bar is not None:
            bar.close()
        if own and client is not None:
            close_client(client, cluster)
    return state


def _loop(client, spec: CampaignSpec, runs: int, keep: int, todo: Iterator[int],
          state: Progress, journal: Journal, out_dir: Path, bar, on_row) -> None:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    token = uuid.uuid4().hex[:8]
    pending = as_completed()
    inflight: dict[str, tuple[int, Any]] = {}   # key -> (run, future)

    def fill() -> None:
        window = max(4, WINDOW_PER_WORKER * max(1, sum(client.nthreads().values())))
        while len(inflight) < window:
            k = next(todo, None)
            if k is None:
                return
            fut = client.submit(run_one, spec, k, kept(k, runs, keep), pure=False,
                                key=f"fsil-mc-{token}-run{k}")
            inflight[fut.key] = (k, fut)
            pending.add(fut)

    fill()
    try:
        while not pending.is_empty():
            name = signals.noted()
            if name:                     # SIGINT/SIGTERM under fsil mc: stop here
                state.interrupted, state.signal = True, name
                return
            if not pending.has_ready():
                time.sleep(POLL_S)
                continue
            fut = next(pending)
            k = inflight.pop(fut.key)[0]
            try:
                row, history = fut.result()
            except KilledWorker as e:
                row, history = _error_row(spec, k, f"worker lost while running it, "
                                                   f"{e.__class__.__name__}: {e}"), None
            except Exception as e:  # a task that failed outside run_one's own catch
                row, history = _error_row(spec, k, f"{type(e).__name__}: {e}"), None
            fut.release()
            if history is not None and row.get("history"):
                _write_history(out_dir / row["history"], history)
            journal.write(row)
            state.done += 1
            state.new += 1
            state.landed += row["outcome"] == "landed"
            if bar is not None:
                bar.set_postfix_str(_rate_text(state), refresh=False)
                bar.update(1)
            if on_row is not None:
                on_row(row)
            fill()
    finally:
        if inflight:  # interrupted: the finished runs are in the journal already
            client.cancel([f for _, f in inflight.values()], force=True)
            pending.clear()


def _error_row(spec: CampaignSpec, run: int, reason: str) -> dict:
    from hil import dispersions
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(run=run, seed=dispersions.plant_seed(spec.seed, run), outcome="error",
               reason=reason[:500], error=reason)
    return row


def _write_history(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _rate_text(state: Progress) -> str:
    return f"landed {100.0 * state.landed / max(1, state.done):.1f}% ({state.landed}/{state.done})"


def _bar(state: Progress, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    bar = tqdm(total=state.runs, initial=state.done, unit="run", dynamic_ncols=True,
               file=sys.stderr, smoothing=0.1)
    if state.done:
        bar.set_postfix_str(_rate_text(state), refresh=False)
    return bar


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    import numpy as np
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    return str(v)
