"""Compatibility: the control channel (``fsil inject``) moved to :mod:`hil.engine.control`."""

from hil.engine.control import (CONTROL_SOCKET, CONTROL_URL_FILE, DEFAULT_TIMEOUT_S,  # noqa: F401
                                MAX_REQUEST_BYTES, ControlServer, FaultControl, NoPlant,
                                Rejected, check_endpoint, endpoint_of, send_request)
