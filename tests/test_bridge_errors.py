"""The exception tree: shape, facts as attributes, one-line messages, pickling."""

import pathlib
import pickle
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import pytest

from bridge import errors as e

SAMPLES = [
    e.UrlError("zmq+foo://x", "zmq+ipc://PATH or loop://NAME", 'unknown scheme "zmq+foo"'),
    e.PeerTimeout(2.5, "a message from the peer", "loop://a"),
    e.PeerClosed("loop://a"),
    e.VersionError(2, 1),
    e.UnknownMessage(42),
    e.MalformedMessage("expected a float, got str", "command", "throttle"),
    e.PayloadTooLarge(5000, 4096),
    e.UnexpectedMessage("hello", "frame or end"),
]


def test_tree():
    assert issubclass(e.LinkError, e.BridgeError) and issubclass(e.ProtocolError, e.BridgeError)
    for cls in (e.UrlError, e.PeerTimeout, e.PeerClosed):
        assert issubclass(cls, e.LinkError) and not issubclass(cls, e.ProtocolError)
    for cls in (e.VersionError, e.UnknownMessage, e.MalformedMessage, e.PayloadTooLarge,
                e.UnexpectedMessage):
        assert issubclass(cls, e.ProtocolError) and not issubclass(cls, e.LinkError)


@pytest.mark.parametrize("error", SAMPLES, ids=lambda x: type(x).__name__)
def test_one_line_message_and_pickle(error):
    text = str(error)
    assert text and "\n" not in text
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == text


def test_messages_carry_the_facts():
    assert str(SAMPLES[0]) == ('bad link URL "zmq+foo://x": unknown scheme "zmq+foo"; '
                               'expected zmq+ipc://PATH or loop://NAME')
    assert SAMPLES[1].timeout_s == 2.5 and "2.5 s" in str(SAMPLES[1])
    assert str(SAMPLES[3]) == "protocol version 2 received, this end speaks version 1"
    assert str(SAMPLES[5]) == ('malformed command message, field "throttle": '
                               'expected a float, got str')
    assert str(SAMPLES[7]) == "got hello while expecting frame or end"
