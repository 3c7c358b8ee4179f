"""A flight software that records the star tracker sample of every frame it is handed
(tests/test_att_plumbing.py): one JSON line per frame, ``[seq, att, type names of att]``,
to the file named by the environment variable FSIL_ATT_LOG. It coasts (throttle 0)."""

import json
import os


class AttProbe:
    def __init__(self, config):
        self.log = open(os.environ["FSIL_ATT_LOG"], "w")
        self.star_tracker = config.get("star_tracker")

    def step(self, frame):
        att = frame.att
        kinds = None if att is None else [type(x).__name__ for x in att]
        self.log.write(json.dumps([frame.seq, att, kinds]) + "\n")
        self.log.flush()
        return 0.0, [0.0, 0.0, 0.0], "coast"
