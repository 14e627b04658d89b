"""Generated protobuf code for proto/brickyard.proto (scripts/gen-proto writes it; do not edit)."""

from . import brickyard_pb2 as pb

__all__ = ["pb"]
