"""Envelope encoding and decoding: one ZeroMQ frame = one serialized Envelope with protocol_version 3 (proto/brickyard.proto)."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from .proto import pb

PROTOCOL_VERSION = 3


class MalformedMessage(Exception):
    """A frame that is not a valid Envelope (logged and dropped by the session)."""


@dataclass(frozen=True)
class Decoded:
    """A decoded envelope: its protocol version, body kind (oneof field name) and body message."""

    version: int
    kind: str
    body: Message


def encode(body: Message, version: int = PROTOCOL_VERSION) -> bytes:
    """Wraps `body` (a Hello, Heartbeat, EvalResult, ...) in an Envelope and serializes it."""
    envelope = pb.Envelope(protocol_version=version)
    field = _FIELD_BY_TYPE.get(type(body).DESCRIPTOR.full_name)
    if field is None:
        raise TypeError(f"{type(body).__name__} is not an Envelope body")
    getattr(envelope, field).CopyFrom(body)
    return envelope.SerializeToString()


def decode(frame: bytes) -> Decoded:
    """Parses one frame; raises MalformedMessage on bytes that are not an Envelope with a body."""
    envelope = pb.Envelope()
    try:
        envelope.ParseFromString(frame)
    except (DecodeError, ValueError) as error:
        raise MalformedMessage(f"not a protobuf Envelope ({error})") from None
    kind = envelope.WhichOneof("body")
    if kind is None:
        raise MalformedMessage("envelope without a body")
    return Decoded(version=envelope.protocol_version, kind=kind, body=getattr(envelope, kind))


_FIELD_BY_TYPE = {
    field.message_type.full_name: field.name
    for field in pb.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields
}
