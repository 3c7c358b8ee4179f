"""fsil board firmware for a Raspberry Pi Pico running MicroPython: the USB serial pump.

Runs at boot (main.py). Waits for the host's bytes with select.poll on sys.stdin.buffer,
reads them in the sizes board.ReadSizer allows (a Pico's stdin read blocks until it has all
the bytes asked for, so it asks only for what the current COBS frame still owes), hands
them to board.Board and writes the replies to sys.stdout.buffer. The LED shows the state: a short blink every 2 s while waiting for a
host, on while a run goes (toggling every 25 frames), a fast blink after a failed run.

Ctrl-C: the serial port carries binary frames, so the REPL's Ctrl-C is switched off while
this runs (micropython.kbd_intr(-1)); instead a Ctrl-C (0x03, or "\\r\\x03" as mpremote
sends it) arriving between frames stops the firmware and leaves the REPL, so mpremote and
`fsil hil deploy` still reach a board running it. See docs/hil.md.

Not imported by the host's tests (it needs machine and the USB console); the logic it
drives is board.py and wire.py.
"""

import gc
import select
import sys
import time

import micropython

from board import RUNNING, WAITING, Board, ReadSizer, repl_request

try:
    from machine import Pin
    LED = Pin("LED", Pin.OUT)
except Exception:  # a board without a named LED
    LED = None

POLL_MS = 20              # longest sleep in poll, ms
IDLE_FLUSH_MS = 500       # a partial frame older than this is dropped (host went away)
GC_BELOW_BYTES = 24000    # collect after a reply when less heap is free


class Led:
    def __init__(self, pin):
        self.pin = pin
        self.state = WAITING
        self.frames = 0

    def set_state(self, state):
        self.state = state
        self.frames = 0
        if self.pin is not None:
            self.pin.value(1 if state == RUNNING else 0)

    def frame(self):
        self.frames += 1
        if self.pin is not None and self.frames % 25 == 0:
            self.pin.toggle()

    def tick(self, now_ms):
        if self.pin is None or self.state == RUNNING:
            return
        if self.state == WAITING:
            self.pin.value(1 if now_ms % 2000 < 60 else 0)
        else:  # FAULT
            self.pin.value(1 if now_ms % 250 < 125 else 0)


def run():
    led = Led(LED)
    try:  # written by 'fsil hil deploy --fsw SPEC'
        from fsw_config import FSW
    except ImportError:
        FSW = "default"
    board = Board(on_state=led.set_state, fsw=FSW)
    sizer = ReadSizer()
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    poller = select.poll()
    poller.register(stdin, select.POLLIN)
    last_rx = time.ticks_ms()
    head = b""
    micropython.kbd_intr(-1)
    try:
        while True:
            now = time.ticks_ms()
            led.tick(now)
            if not poller.poll(POLL_MS):
                if sizer.head and time.ticks_diff(now, last_rx) > IDLE_FLUSH_MS:
                    board.deframer.reset()      # a partial frame from a host that went away
                    sizer.reset()
                continue
            last_rx = now
            at = sizer.head
            data = stdin.read(sizer.size())   # blocks only for bytes the frame still owes
            sizer.took(data)
            if at < 2:                        # the first bytes after a delimiter
                head = data if at == 0 else head + data
                if repl_request(head):
                    break
            frames_before = board.stats["frames"]
            reply = board.feed(data)
            if reply:
                stdout.write(reply)
                if board.stats["frames"] != frames_before:
                    led.frame()
                if gc.mem_free() < GC_BELOW_BYTES:
                    gc.collect()
    finally:
        micropython.kbd_intr(3)
        if LED is not None:
            LED.value(0)


run()
