"""Run k of a campaign again: its scenario and seed from the campaign folder, or as a file.

``fsil run --campaign DIR --run K`` flies run k's scenario with run k's seed: the same
run, bit for bit, as the campaign flew (the history is deterministic in the scenario and the
seed, in one process or two). ``fsil mc export DIR --run K`` writes that scenario as a
plain TOML file (``[run] seed`` set), so ``fsil run --scenario FILE`` replays it too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hil.mc.campaign import CampaignError, load_meta, spec_of
from hil.mc.task import run_config
from hil.scenario import scenario_to_dict
from plant.config import ScenarioConfig


def campaign_run(out_dir: str | os.PathLike[str], run: int) -> tuple[ScenarioConfig, int, dict]:
    """Run ``run``'s scenario and plant seed, and the campaign's metadata."""
    meta = load_meta(Path(out_dir))
    if not 0 <= run < meta["runs"]:
        raise CampaignError(f"--run {run}: {out_dir} has runs 0 .. {meta['runs'] - 1}")
    cfg, seed, _ = run_config(spec_of(meta), run)
    return cfg, seed, meta


def export(out_dir: str | os.PathLike[str], run: int, path: str | os.PathLike[str] | None
           ) -> Path:
    """Write run ``run``'s scenario as a TOML file (default ``DIR/run-K.toml``); returns it."""
    import tomli_w
    cfg, seed, meta = campaign_run(out_dir, run)
    data = _without_none(scenario_to_dict(cfg))
    data.pop("dispersions", None)
    data["name"] = f"{cfg.name}-run{run}"
    data["description"] = (f"run {run} of campaign {meta['name']} (seed {meta['seed']}), "
                           f"exported by fsil mc export")
    target = Path(path) if path else Path(out_dir) / f"run-{run}.toml"
    header = (f"# Run {run} of the campaign in {out_dir}: its drawn values and its seed.\n"
              f"# Replay: fsil run --scenario {target}"
              + (f" --fsw {meta['fsw']}" if meta["fsw"] != "default" else "") + "\n\n")
    target.write_text(header + tomli_w.dumps(data), encoding="utf-8")
    return target


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
