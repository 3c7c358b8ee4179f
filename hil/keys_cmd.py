"""``fsil keys DIR``: make the CURVE keys a link across machines needs (bridge.keys).

    fsil keys ~/.config/fsil/keys
    fsil plant --link 'zmq+tcp://0.0.0.0:5555?keys=~/.config/fsil/keys' --allow-remote
    fsil fsw --link 'zmq+tcp://plant-host:5555?keys=DIR_WITH_plant.key_AND_fsw.key_secret'
"""

from __future__ import annotations

import argparse

from hil.errors import ConfigError

DEFAULT_DIR = "~/.config/fsil/keys"


def add_parser(sub) -> None:
    """Register ``fsil keys`` on the CLI's subparsers."""
    p = sub.add_parser(
        "keys", help="make CURVE keys for a link that crosses machines (--allow-remote)",
        description="Write a CURVE key pair for the plant and one for the flight software "
                    "into DIR (ZeroMQ certificate files; secrets 0600 in a 0700 folder). The "
                    "plant keeps plant.key_secret and fsw.key; the flight software's machine "
                    "needs plant.key and fsw.key_secret. Both name the folder in the link "
                    "URL: zmq+tcp://HOST:PORT?keys=DIR (docs/protocol.md, 'Links across "
                    "machines').")
    p.add_argument("dir", nargs="?", default=DEFAULT_DIR,
                   help=f"folder for the keys (default {DEFAULT_DIR})")
    p.add_argument("--force", action="store_true",
                   help="replace keys already there (peers holding the old ones are locked out)")
    p.set_defaults(func=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    from bridge.keys import make_keys
    try:
        files = make_keys(args.dir, force=args.force)
    except FileExistsError as error:
        raise ConfigError(str(error)) from None
    except OSError as error:
        raise ConfigError(f"cannot write keys in {args.dir}: {error.strerror or error}") \
            from None
    folder = files[0].parent
    print(f"wrote {', '.join(f.name for f in files)} in {folder}")
    print(f"plant: --link 'zmq+tcp://0.0.0.0:PORT?keys={folder}' --allow-remote")
    print("flight software machine: copy plant.key, fsw.key and fsw.key_secret to a folder "
          "DIR there, then --link 'zmq+tcp://PLANT_HOST:PORT?keys=DIR'")
    return 0
