"""Board firmware for a Raspberry Pi Pico running MicroPython (see docs/hil.md).

wire.py and board.py are the pure protocol core (also imported by the host's tests);
main.py is the Pico's USB serial pump. ``fsil hil deploy`` copies them, with fsw/*.py and
bridge/protocol.py, to the board; this file stays on the host.
"""
