"""CURVE keys for a link that crosses machines: made by ``fsil keys``, used by ``?keys=DIR``.

    fsil keys ~/.config/fsil/keys        # plant.key, plant.key_secret, fsw.key, fsw.key_secret

A ZeroMQ link bound to an address other than loopback is encrypted and authenticated with
ZeroMQ's CURVE mechanism (RFC 26/CurveZMQ: Curve25519 keys, the plant is the CURVE server):

* the plant holds ``plant.key_secret`` and accepts only clients whose public key is a
  ``*.key`` file in its keys folder (``fsw.key``): a ZAP authenticator checks each one;
* the flight software holds ``fsw.key_secret`` and the plant's public key ``plant.key``:
  it refuses a server that cannot prove it holds ``plant.key_secret``.

So the flight software's machine gets a folder with ``plant.key`` and ``fsw.key_secret``
(and ``fsw.key``); the plant's folder has ``plant.key_secret`` and ``fsw.key``. The files
are ZeroMQ's certificate format (``zmq.auth.create_certificates``); secret files are
written 0600 in a 0700 folder. Both ends name the folder in the link URL:
``zmq+tcp://0.0.0.0:5555?keys=DIR`` (plant) and ``zmq+tcp://plant-host:5555?keys=DIR``
(flight software).
"""

from __future__ import annotations

import os
from pathlib import Path

from bridge.errors import LinkError

PLANT = "plant"   # the CURVE server
FSW = "fsw"       # the CURVE client
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"


def make_keys(folder: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write a plant and a flight software key pair into ``folder`` (created 0700).

    Refuses to replace existing keys unless ``force``. Returns the files written.
    """
    import zmq.auth
    folder = Path(folder).expanduser()
    names = [folder / f"{who}{suffix}" for who in (PLANT, FSW)
             for suffix in (PUBLIC_SUFFIX, SECRET_SUFFIX)]
    existing = [path for path in names if path.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists: keys were made there already (--force "
                              "replaces them, locking out every peer that holds the old ones)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    old = os.umask(0o077)
    try:
        for who in (PLANT, FSW):
            for suffix in (PUBLIC_SUFFIX, SECRET_SUFFIX):
                (folder / f"{who}{suffix}").unlink(missing_ok=True)
            zmq.auth.create_certificates(folder, who, metadata={"fsil-role": who})
    finally:
        os.umask(old)
    for path in names:
        os.chmod(path, 0o600 if path.name.endswith(SECRET_SUFFIX) else 0o644)
    return names


def load_pair(folder: str | os.PathLike, who: str) -> tuple[bytes, bytes]:
    """(public, secret) key of ``who`` ("plant" or "fsw") from ``folder``; LinkError if
    missing, unreadable or without its secret half."""
    import zmq.auth
    path = Path(folder).expanduser() / f"{who}{SECRET_SUFFIX}"
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise LinkError(f"CURVE keys: cannot read {path}: {error}; make keys with "
                        f"'fsil keys {folder}'") from error
    if not secret:
        raise LinkError(f"CURVE keys: {path} holds no secret key")
    return public, secret


def load_public(folder: str | os.PathLike, who: str) -> bytes:
    """The public key of ``who`` from ``folder`` (``who.key``); LinkError if missing."""
    import zmq.auth
    path = Path(folder).expanduser() / f"{who}{PUBLIC_SUFFIX}"
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise LinkError(f"CURVE keys: cannot read {path}: {error}; copy it from the folder "
                        "'fsil keys' made") from error
    return public
