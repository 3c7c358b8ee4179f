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
"""

from __future__ import annotations

import os
import tempfile
import time

LINK_DIR_ENV = "FSIL_LINK_DIR"
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


def remove_if_orphaned(url: str, plant_gone: bool = False) -> bool:
    """Remove the link folder fsil made for ``url`` if its plant has died (see the module
    docstring); ``plant_gone``: the link dropped, so wait briefly for the reparenting that
    proves it. Returns True if the folder was removed. Never raises."""
    try:
        folder = os.environ.get(LINK_DIR_ENV, "")
        if not folder or not url.startswith("zmq+ipc://"):
            return False
        sock = url[len("zmq+ipc://"):]
        real = os.path.realpath(folder)
        if os.path.realpath(os.path.dirname(sock)) != real \
                or os.path.basename(sock) != SOCKET_NAME \
                or os.path.dirname(real) != os.path.realpath(tempfile.gettempdir()) \
                or not os.path.basename(real).startswith(PREFIX):
            return False
        st = os.lstat(real)
        if os.path.islink(real) or st.st_uid != os.getuid():
            return False
        pid = _plant_pid(real)
        if pid is None:
            return False
        deadline = time.monotonic() + (REPARENT_WAIT_S if plant_gone else 0.0)
        while os.getppid() == pid:          # the plant still runs: it removes the folder
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
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
