"""bench/lockstep_trace.py pairs the two processes' logs into a cycle's parts: on a made-up
timeline whose every part is known, each part comes out, and the parts add up to the cycle."""

from __future__ import annotations

import numpy as np
import pytest

from bench.lockstep_trace import RECV, SEND, timeline

# One cycle (ns from FRAME k out): plant send 30 us, delivery 20, fsw work 150, fsw send 10,
# delivery 25, plant's command-to-frame 100 -> 335 us. The plant starts waiting 60 us after
# its send returned (before the command is sent: never late) but in cycle 2, 400 us late.
CYCLE_NS = 335_000


def _logs(cycles: int) -> tuple[np.ndarray, np.ndarray]:
    plant, fsw = [], []
    plant.append((SEND, 0, 1_000))                 # HELLO
    fsw.append((RECV, 500, 1_500))
    fsw.append((SEND, 2_000, 3_000))               # HELLO_ACK
    plant.append((RECV, 2_500, 4_000))
    t = 10_000
    for k in range(cycles + 1):                   # FRAME k and its COMMAND; one more FRAME
        plant.append((SEND, t, t + 30_000))
        fsw.append((RECV, t - 5_000, t + 50_000))
        fsw.append((SEND, t + 200_000, t + 210_000))
        late = 400_000 if k == 2 else 0
        plant.append((RECV, t + 90_000 + (late and 210_000 + late - 90_000), t + 235_000 + late))
        t += CYCLE_NS + late
    return np.array(plant, dtype=np.int64), np.array(fsw, dtype=np.int64)


def test_each_part_of_a_known_cycle_is_placed():
    plant, fsw = _logs(6)
    parts = timeline(plant, fsw, 6)
    p50 = {k: v["p50"] for k, v in parts.items()}
    assert p50["plant_send_frame"] == pytest.approx(30.0)
    assert p50["frame_delivery"] == pytest.approx(20.0)
    assert p50["fsw_between_frame_and_command"] == pytest.approx(150.0)
    assert p50["fsw_send_command"] == pytest.approx(10.0)
    assert p50["command_delivery"] == pytest.approx(25.0)
    assert p50["plant_command_to_next_frame"] == pytest.approx(100.0)
    assert p50["cycle"] == pytest.approx(335.0)
    mean = {k: v["mean"] for k, v in parts.items()}
    # cycle 2 of the 5 paired: the plant came 400 us late, and the cycle is that much longer
    assert mean["plant_late_to_receive"] == pytest.approx(400.0 / 5)
    assert mean["cycle"] == pytest.approx(335.0 + 400.0 / 5)
    assert sum(mean[k] for k in ("plant_send_frame", "frame_delivery",
                                 "fsw_between_frame_and_command", "fsw_send_command",
                                 "command_delivery", "plant_command_to_next_frame")) \
        == pytest.approx(mean["cycle"])


def test_logs_shorter_than_the_run_are_refused():
    plant, fsw = _logs(3)
    with pytest.raises(SystemExit, match="too short"):
        timeline(plant, fsw, 10)
