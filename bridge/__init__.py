"""The bridge between plant and flight software: wire codec, links and their errors.

    link = open_link("zmq+tcp://127.0.0.1:5555", role="plant")
    link.send_msg(protocol.HELLO, {...})
    ack = link.recv_msg(timeout_s=5.0, expect=protocol.HELLO_ACK)

Transports are chosen by URL and imported only when used (see :mod:`bridge.url`).
"""

from bridge import protocol
from bridge.codec import Message, decode, encode
from bridge.errors import (BridgeError, LinkError, LinkOpenError, MalformedMessage, PayloadTooLarge, PeerClosed,
                           PeerTimeout, ProtocolError, UnexpectedMessage, UnknownMessage, UrlError,
                           VersionError)
from bridge.link import Link
from bridge.url import open_link

__all__ = [
    "protocol", "open_link", "Link", "Message", "encode", "decode",
    "BridgeError", "LinkError", "LinkOpenError", "UrlError", "PeerTimeout", "PeerClosed",
    "ProtocolError", "VersionError", "UnknownMessage", "MalformedMessage", "PayloadTooLarge",
    "UnexpectedMessage",
]
