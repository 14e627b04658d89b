"""The one error type of request handling: becomes an EvalFailed on the wire."""

from __future__ import annotations


class EvalError(Exception):
    """A request that cannot be answered.

    `retryable` tells the coordinator whether another attempt (possibly on another evaluator) could succeed:
    False for anything wrong with the request's inputs (adapter does not fit the base, bad example, bad
    coefficient count), True for transient trouble (out of memory, an unexpected internal error).
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message
