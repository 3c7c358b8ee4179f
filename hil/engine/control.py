"""The plant's control channel: commands to a running plant (``fsil inject``).

While a run goes on, the plant side serves a ZeroMQ REP socket, by default
``ipc://RUN_DIR/control.sock``, and writes that endpoint (a plain ZeroMQ address, one
line) to ``RUN_DIR/control.url``; both are removed when the run ends. Only ``ipc://`` and
loopback ``tcp://`` (127.0.0.1, localhost, [::1]) endpoints are accepted.

The plant looks at the socket just before it steps the physics, at most every
:data:`POLL_INTERVAL_NS` of wall time (every cycle in real time at up to 500 Hz; a lockstep
run's cycles are shorter, and a look costs two system calls), and takes at most one
request at a time. A valid request is applied before that step, so it takes effect within
one cycle of being taken; the reply goes out right after the step and says when:

    request   {"sensor": "altimeter", "kind": "bias", "value": 50.0}
    reply     {"ok": true, "action": "inject", "label": "altimeter:bias", "fired": true,
               "t_s": 12.345, "seq": 618, "armed_t_s": 12.34, "fault": {...summary entry...}}
    request   {"sensor": "altimeter", "kind": "bias", "clear": true}
    reply     {"ok": true, "action": "clear", "t_s": 14.0, "seq": 700, "cleared": [{...}]}
    rejected  {"ok": false, "error": "kind = \\"late\\" needs value (...)"}

A request is one JSON object (UTF-8) or one msgpack map of at most
:data:`MAX_REQUEST_BYTES` bytes, nested at most :data:`MAX_REQUEST_DEPTH` deep; the reply
uses the same encoding. Anything else -- garbage, a deeply nested document, an oversized
request -- is answered with ``{"ok": false, "error": ...}`` and the run goes on (a message
beyond :data:`MAX_MESSAGE_BYTES` is dropped by ZeroMQ, which disconnects its sender).
The ipc socket file is created private to the user (0600) whatever the umask.
Its keys are those of a ``[[faults]]`` table (checked by the same rules) plus ``clear``.
Without ``at_time_s`` the fault is armed at the current sim time. ``t_s``/``seq``: the sim
time at which the fault fired and the first frame that carries it (``null`` while a
trigger such as ``below_altitude_m`` has not yet held: ``fired`` is false); for a clear,
the time it took effect and the first frame without it. See docs/faults.md.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import msgpack
import zmq

from hil.errors import EXIT_LINK, ConfigError, HilError, ScenarioError

CONTROL_SOCKET = "control.sock"
CONTROL_URL_FILE = "control.url"
MAX_REQUEST_BYTES = 4096          # a request is a small flat map (about 100 bytes)
MAX_REQUEST_DEPTH = 4             # nesting of maps and arrays in a request
MAX_MESSAGE_BYTES = 65536         # ZeroMQ drops bigger messages (and their sender)
POLL_INTERVAL_NS = 2_000_000      # the plant looks at the socket at most this often
SOCKET_MODE = 0o600
DEFAULT_TIMEOUT_S = 5.0
_IPC_PATH_MAX_BYTES = 107
_CLEAR_KEYS = ("sensor", "kind", "name")


class NoPlant(HilError):
    """No plant answered on the control channel (none running, or it did not reply in time)."""

    exit_code = EXIT_LINK


class Rejected(HilError):
    """The plant refused a request (``reason`` says why)."""

    exit_code = ConfigError.exit_code


def check_endpoint(endpoint: str) -> None:
    """Accept ``ipc://PATH`` and loopback ``tcp://HOST:PORT`` only; raise ConfigError."""
    if endpoint.startswith("ipc://") and len(endpoint) > len("ipc://"):
        return
    if endpoint.startswith("tcp://"):
        host = endpoint[len("tcp://"):].rpartition(":")[0].strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise ConfigError(f'control endpoint "{endpoint}": expected ipc://PATH or '
                      f"tcp://127.0.0.1:PORT (loopback only)")


# ---------------------------------------------------------------- plant side


class ControlServer:
    """The REP socket: non-blocking receive of one request, one reply each."""

    def __init__(self, run_dir: str | os.PathLike[str], endpoint: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self._tmp: str | None = None
        self._ipc_path: str | None = None
        if endpoint is None:
            path = str((self.run_dir / CONTROL_SOCKET).resolve())
            if len(os.fsencode(path)) > _IPC_PATH_MAX_BYTES:  # too long for a Unix socket
                self._tmp = tempfile.mkdtemp(prefix="fsil-ctl-")
                path = os.path.join(self._tmp, CONTROL_SOCKET)
            endpoint = f"ipc://{path}"
        check_endpoint(endpoint)
        if endpoint.startswith("ipc://"):
            self._ipc_path = endpoint[len("ipc://"):]
        self._awaiting: str | None = None   # encoding of the request waiting for its reply
        self._bound = False
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        try:
            if self._ipc_path is not None:
                from bridge.zmq_link import _check_ipc_free
                _check_ipc_free(self._ipc_path)
                old_umask = os.umask(0o177)   # the socket file is born 0600
                try:
                    self._socket.bind(endpoint)
                finally:
                    os.umask(old_umask)
                self._bound = True
                os.chmod(self._ipc_path, SOCKET_MODE)
            else:
                self._socket.bind(endpoint)
                self._bound = True
        except (zmq.ZMQError, OSError) as error:
            self.close()
            reason = getattr(error, "strerror", None) or str(error)
            raise ConfigError(f"cannot open the control channel at {endpoint}: {reason}") \
                from error
        self.endpoint = self._socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.url_file = self.run_dir / CONTROL_URL_FILE
        # Atomically: a reader polling for the file never sees it empty.
        tmp = self.url_file.with_name(self.url_file.name + ".tmp")
        tmp.write_text(self.endpoint + "\n", encoding="utf-8")
        os.replace(tmp, self.url_file)

    def poll(self) -> dict | None:
        """The next request, if one is waiting (never blocks); None otherwise.

        A request that is not a JSON object or msgpack map is answered at once (rejected).
        After a request is returned, :meth:`reply` must be called before the next one.
        """
        if self._awaiting is not None or self._socket is None:
            return None
        try:
            raw = self._socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None
        except zmq.ZMQError:
            return None
        self._awaiting = "json" if raw.lstrip()[:1] in (b"{", b"[") else "msgpack"
        try:
            request = parse_request(raw, self._awaiting)
        except Exception as error:   # anything a peer sends: an error reply, never fatal
            reason = str(error) if isinstance(error, Rejected) else \
                f"not a JSON object or msgpack map ({type(error).__name__}: {error})"
            self.reply({"ok": False, "error": " ".join(reason.split())[:300]})
            return None
        return request

    def reply(self, data: dict) -> None:
        """Answer the request returned by the last :meth:`poll` (best effort, never blocks)."""
        if self._awaiting is None or self._socket is None:
            return
        payload = json.dumps(data).encode("utf-8") if self._awaiting == "json" \
            else msgpack.packb(data, use_bin_type=True)
        self._awaiting = None
        try:
            self._socket.send(payload, zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the client gave up: nothing to do

    def close(self) -> None:
        """Answer a pending request (the run ended), close, remove control.url and the socket."""
        socket, self._socket = getattr(self, "_socket", None), None
        if socket is not None:
            if self._awaiting is not None:
                self._socket = socket
                self.reply({"ok": False, "error": "the run ended before the request took effect"})
                self._socket = None
            socket.close(linger=0)
            self._context.term()
        url_file = getattr(self, "url_file", None)
        if url_file is not None:
            try:
                if url_file.read_text(encoding="utf-8").strip() == self.endpoint:
                    url_file.unlink()
            except OSError:
                pass
        if self._ipc_path is not None and self._bound:
            try:
                os.unlink(self._ipc_path)
            except OSError:
                pass
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def parse_request(raw: bytes, encoding: str) -> dict:
    """A request's map, checked for size and depth before and after decoding; raises
    Rejected (or the decoder's error) for anything else."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise Rejected(f"request of {len(raw)} bytes; at most {MAX_REQUEST_BYTES}")
    if encoding == "json":
        if _json_depth(raw) > MAX_REQUEST_DEPTH:
            raise Rejected(f"request nested deeper than {MAX_REQUEST_DEPTH} levels")
        request = json.loads(raw.decode("utf-8"))
    else:
        request = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        if _depth(request) > MAX_REQUEST_DEPTH:
            raise Rejected(f"request nested deeper than {MAX_REQUEST_DEPTH} levels")
    if not isinstance(request, dict):
        raise Rejected(f"expected a map, got {type(request).__name__}")
    return request


def _json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays and objects in a JSON text (strings skipped), counted up
    to one past the limit."""
    depth = deepest = 0
    in_string = escaped = False
    for b in raw:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:      # backslash
                escaped = True
            elif b == 0x22:      # quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b == 0x5B or b == 0x7B:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_REQUEST_DEPTH:
                    return deepest
        elif b == 0x5D or b == 0x7D:
            depth -= 1
    return deepest


def _depth(obj: Any) -> int:
    """Nesting depth of decoded maps and lists, without recursion."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            items = list(item.values())
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_REQUEST_DEPTH:
            return deepest
        todo.extend((x, level + 1) for x in items)
    return deepest


class FaultControl:
    """Sensor-fault requests applied to a :class:`plant.lander.LanderPlant` between steps.

    The plant side calls :meth:`before_step` just before ``plant.step`` and
    :meth:`after_step` right after it, every cycle.
    """

    def __init__(self, server: ControlServer, poll_interval_ns: int = POLL_INTERVAL_NS) -> None:
        self.server = server
        self._inflight: tuple[str, Any, int] | None = None
        self.requests = 0
        self.rejected = 0
        self.poll_interval_ns = poll_interval_ns
        self._next_poll_ns = 0

    def before_step(self, plant) -> None:
        now = perf_counter_ns()      # a vDSO read, no system call: most cycles stop here
        if now < self._next_poll_ns:
            return
        self._next_poll_ns = now + self.poll_interval_ns
        request = self.server.poll()
        if request is None:
            return
        self.requests += 1
        try:
            self._inflight = self._apply(plant, request)
        except Exception as error:   # a bad request never ends the run
            self.rejected += 1
            reason = str(error) if isinstance(error, Rejected) else \
                f"request not applied ({type(error).__name__}: {error})"
            self.server.reply({"ok": False, "error": " ".join(reason.split())[:300]})

    def after_step(self, plant, frame) -> None:
        if self._inflight is None:
            return
        action, what, armed_us = self._inflight
        self._inflight = None
        if action == "clear":
            self.server.reply({"ok": True, "action": "clear", "t_s": armed_us / 1e6,
                               "seq": frame.seq, "cleared": [f.summary() for f in what]})
            return
        fired = what.fired_t_us is not None
        self.server.reply({
            "ok": True, "action": "inject", "label": what.label, "fired": fired,
            "t_s": what.fired_t_us / 1e6 if fired else None,
            "seq": what.fired_seq if fired else None,
            "armed_t_s": armed_us / 1e6, "frame_seq": frame.seq, "fault": what.summary(),
        })

    def close(self) -> None:
        self.server.close()

    @staticmethod
    def _apply(plant, request: dict) -> tuple[str, Any, int]:
        from hil.scenario import fault_from_dict
        from plant.faults import KINDS
        data = dict(request)
        clear = data.pop("clear", False)
        if not isinstance(clear, bool):
            raise Rejected(f"clear = {clear!r} must be true or false")
        now_us = plant.t_us
        if clear:
            extra = sorted(str(k) for k in data if k not in _CLEAR_KEYS)
            if extra:
                raise Rejected(f"a clear request takes only sensor, kind and name; "
                               f"got {', '.join(extra)}")
            sensor, kind, name = data.get("sensor"), data.get("kind"), data.get("name")
            if sensor not in KINDS:
                raise Rejected(f"sensor = {sensor!r} is not one of {', '.join(KINDS)}")
            if kind is not None and kind not in KINDS[sensor]:
                raise Rejected(f"kind = {kind!r} is not a {sensor} fault; {sensor} faults: "
                               + ", ".join(KINDS[sensor]))
            cleared = plant.faults.clear(now_us, sensor, kind, name)
            if not cleared:
                what = sensor + (f":{kind}" if kind else "") + (f" named {name!r}" if name else "")
                raise Rejected(f"no armed or active {what} fault to clear")
            return "clear", cleared, now_us
        try:
            cfg = fault_from_dict(data, "inject")
        except ScenarioError as error:
            raise Rejected(error.reason) from None
        now_s = now_us / 1e6
        if "at_time_s" not in data:
            cfg.at_time_s = now_s
        if cfg.until_time_s is not None and cfg.until_time_s <= now_s:
            raise Rejected(f"until_time_s = {cfg.until_time_s:g} is not after the current sim "
                           f"time, {now_s:g} s")
        return "add", plant.faults.add(cfg, "inject", now_us), now_us


# ---------------------------------------------------------------- client


def endpoint_of(run_dir: str | os.PathLike[str]) -> str:
    """The control endpoint a running plant wrote to ``RUN_DIR/control.url``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder")
    try:
        endpoint = (run_dir / CONTROL_URL_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NoPlant(f"no plant is running in {run_dir} (no {CONTROL_URL_FILE}: the run has "
                      f"ended or has not started)") from None
    except OSError as error:
        raise NoPlant(f"cannot read {run_dir / CONTROL_URL_FILE}: "
                      f"{error.strerror or error}") from error
    check_endpoint(endpoint)
    return endpoint


def send_request(run_dir: str | os.PathLike[str], request: dict,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """Send one request to the plant running in ``run_dir``; its reply (``ok`` says whether
    it was accepted). Raises NoPlant when none answers within ``timeout_s``."""
    endpoint = endpoint_of(run_dir)
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(json.dumps(request).encode("utf-8"))
        if not sock.poll(max(0, int(timeout_s * 1000)), zmq.POLLIN):
            raise NoPlant(f"no plant answered at {endpoint} within {timeout_s:g} s")
        raw = sock.recv()
    except zmq.ZMQError as error:
        raise NoPlant(f"control channel {endpoint}: {error.strerror}") from error
    finally:
        sock.close(linger=0)
        context.term()
    try:
        reply = json.loads(raw.decode("utf-8"))
    except ValueError as error:
        raise NoPlant(f"unreadable reply from {endpoint}: {error}") from error
    if not isinstance(reply, dict):
        raise NoPlant(f"unreadable reply from {endpoint}: not a JSON object")
    return reply
