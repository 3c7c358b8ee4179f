"""The temporary folder of a run's ipc link (``/tmp/fsil-XXXX/link.sock``) and who removes it.

``fsil run`` without ``--link`` makes a private folder for the link's socket file
(:func:`make_link_dir`, 0700, holding a marker file that names the plant's pid) and removes
it once the link is closed. A plant killed with SIGKILL cannot; the flight-software process
it started then can, and only then (:func:`remove_if_orphaned`): the parent passes the exact
folder in the environment (``FSIL_LINK_DIR``), and the child removes it only if

- it is the folder of the ipc link it was given, directly in the temporary directory, named
  ``fsil-*``, owned by this user;
- it holds fsil's marker naming a plant pid, and that plant is gone (this process's parent
  is no longer that pid);
- nothing but the socket file and the marker is in it (they are unlinked one by one, then
  the empty folder removed: never a recursive delete).

A user's own ``--link zmq+ipc://PATH`` is never touched: no marker, no environment entry.

Before removing the folder, the child records the plant's death in the run folder
(:func:`record_plant_death`): the parent names it in ``FSIL_RUN_DIR`` beside
``FSIL_LINK_DIR``, and the child rewrites its summary.json -- only the provisional one the
plant wrote as the run started (outcome ``incomplete``), only if it names the same plant
pid as the marker, in a folder and a file owned by this user that are not symbolic links --
with outcome ``link_failure`` and a reason naming the plant's death, the last frame's seq and
that the record comes from the flight-software side (a temporary file renamed over it).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time

LINK_DIR_ENV = "FSIL_LINK_DIR"
RUN_DIR_ENV = "FSIL_RUN_DIR"
SUMMARY_NAME = "summary.json"
MAX_SUMMARY_BYTES = 1 << 20
MARKER = ".fsil-link"
PREFIX = "fsil-"
SOCKET_NAME = "link.sock"
REPARENT_WAIT_S = 0.5   # a killed parent's sockets close a moment before the child is reparented


def make_link_dir() -> str:
    """A fresh private folder for the link's socket, with fsil's marker (this pid)."""
    path = tempfile.mkdtemp(prefix=PREFIX)
    fd = os.open(os.path.join(path, MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(f"fsil link folder\nplant pid {os.getpid()}\n")
    return path


def _plant_pid(folder: str) -> int | None:
    """The plant pid in the folder's marker, or None if there is no valid fsil marker."""
    marker = os.path.join(folder, MARKER)
    try:
        st = os.lstat(marker)
        if not (os.path.isfile(marker) and not os.path.islink(marker)) \
                or st.st_uid != os.getuid() or st.st_size > 100:
            return None
        with open(marker, encoding="ascii") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) != 2 or lines[0] != "fsil link folder" or not lines[1].startswith("plant pid "):
        return None
    pid = lines[1].removeprefix("plant pid ")
    return int(pid) if pid.isdigit() else None


def remove_if_orphaned(url: str, plant_gone: bool = False, seq: int | None = None) -> bool:
    """Remove the link folder fsil made for ``url`` if its plant has died (see the module
    docstring), recording the death (``seq``: the last frame received) in the run folder's
    provisional summary first; ``plant_gone``: the link dropped, so wait briefly for the
    reparenting that proves it. Returns True if the folder was removed. Never raises."""
    try:
        found = _orphaned_folder(url, plant_gone)
        if found is None:
            return False
        real, pid = found
        record_plant_death(pid, seq)
        if set(os.listdir(real)) - {MARKER, SOCKET_NAME}:
            return False                    # something else in it: not ours to remove
        for name in (SOCKET_NAME, MARKER):
            try:
                os.unlink(os.path.join(real, name))
            except FileNotFoundError:
                pass
        os.rmdir(real)
        return True
    except OSError:
        return False


def _orphaned_folder(url: str, plant_gone: bool) -> tuple[str, int] | None:
    """(the link folder, its dead plant's pid) if every check of the module docstring holds."""
    folder = os.environ.get(LINK_DIR_ENV, "")
    if not folder or not url.startswith("zmq+ipc://"):
        return None
    sock = url[len("zmq+ipc://"):]
    real = os.path.realpath(folder)
    if os.path.realpath(os.path.dirname(sock)) != real \
            or os.path.basename(sock) != SOCKET_NAME \
            or os.path.dirname(real) != os.path.realpath(tempfile.gettempdir()) \
            or not os.path.basename(real).startswith(PREFIX):
        return None
    st = os.lstat(real)
    if os.path.islink(real) or st.st_uid != os.getuid():
        return None
    pid = _plant_pid(real)
    if pid is None:
        return None
    deadline = time.monotonic() + (REPARENT_WAIT_S if plant_gone else 0.0)
    while os.getppid() == pid:          # the plant still runs: it removes the folder
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)
    return real, pid


def record_plant_death(plant_pid: int, seq: int | None) -> bool:
    """Rewrite the provisional summary.json in ``$FSIL_RUN_DIR`` as ``link_failure`` (see the
    module docstring); only for the dead plant ``plant_pid``, which the caller has proved
    gone. Returns True if it was rewritten. Never raises."""
    try:
        run_dir = os.environ.get(RUN_DIR_ENV, "")
        if not run_dir or not os.path.isabs(run_dir):
            return False
        st = os.lstat(run_dir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return False                # not a folder (a symbolic link is not followed)
        path = os.path.join(run_dir, SUMMARY_NAME)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() \
                    or st.st_size > MAX_SUMMARY_BYTES:
                return False
            summary = json.loads(f.read(MAX_SUMMARY_BYTES).decode("utf-8"))
        if not isinstance(summary, dict) or summary.get("outcome") != "incomplete" \
                or summary.get("provisional") is not True \
                or (summary.get("processes") or {}).get("plant_pid") != plant_pid:
            return False                # the plant's own end, or another plant's run
        at = f"after seq {seq} (the last frame it sent)" if seq is not None \
            else "before its first frame"
        summary.update(
            outcome="link_failure",
            reason=f"link failure: the plant process (pid {plant_pid}) died {at}, without "
                   f"writing its summary (killed?); recorded by the flight-software process "
                   f"(pid {os.getpid()}), which saw its link drop",
            recorded_by="fsw", last_seq=seq,
            ended_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        summary["processes"] = {**(summary.get("processes") or {}), "fsw_pid": os.getpid()}
        tmp = os.path.join(run_dir, f".{SUMMARY_NAME}.fsw-{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(summary, indent=2) + "\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True
    except (OSError, ValueError):
        return False
