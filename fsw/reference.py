"""fsil's own flight software as contract classes: ``Default`` and ``Legacy`` (MicroPython-safe).

``fsil ... --fsw default`` and ``--fsw legacy`` resolve to these (fsw/host/registry.py), on
the host and on a board alike: each is constructed from the HELLO config map alone, as any
user's flight software is (docs/your-fsw.md).
"""

from fsw import core


class Default(core.FlightSoftware):
    """The reference flight software with altimeter fault detection, isolation and recovery."""

    NAME = core.NAME
    VERSION = core.VERSION + " (default)"

    def __init__(self, config):
        core.FlightSoftware.__init__(self, config, "default")


class Legacy(core.FlightSoftware):
    """The reference flight software with the altimeter logic that failed in flight."""

    NAME = core.NAME
    VERSION = core.VERSION + " (legacy)"

    def __init__(self, config):
        core.FlightSoftware.__init__(self, config, "legacy")


BUILTIN = {"default": Default, "legacy": Legacy}
