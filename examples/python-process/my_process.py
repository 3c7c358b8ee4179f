"""A flight software process of your own, written with fsil's Python client (bridge/client.py).

Run it in place of fsil's flight software:

    fsil run --scenario terminal --fsw-cmd 'python examples/python-process/my_process.py {link}'

or start the two sides yourself, in two terminals:

    fsil plant --scenario terminal --link zmq+ipc:///tmp/fsil-demo/link.sock
    python examples/python-process/my_process.py zmq+ipc:///tmp/fsil-demo/link.sock

The process owns its main loop: it connects to the plant, builds its flight software from
the handshake's config, answers each frame, and exits with the run's code (0 landed, 1 not
landed, 3 link failure). The guidance here is the class of examples/python-fsw; yours can be
anything that turns a frame into (throttle, torque_nm, mode[, nav, flags]).
"""

import os
import sys

from bridge.client import FswClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python-fsw"))
from my_fsw import MyFsw  # noqa: E402  (the example class, kept in one place)


def main(url):
    with FswClient(url, software="my-process 1.0") as client:
        fsw = MyFsw(client.config)                 # the HELLO's config map
        for frame in client.frames():              # .seq, .t_us, .imu, .alt, .vel, .att
            client.reply(fsw.step(frame))          # ends when the plant ends the run
    return client.exit_code


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FSIL_LINK")
    if not url:
        sys.exit("usage: my_process.py LINK_URL (or FSIL_LINK in the environment)")
    sys.exit(main(url))
