"""The computing side: a FIFO of requests answered one at a time on a dedicated thread.

The session thread (which owns the socket) hands over Welcomes and EvalRequests; this thread loads the base model,
evaluates requests and passes each answer (EvalResult or EvalFailed) to `send`, tagged with the connection it
belongs to, so answers to a connection that has since been lost are dropped by the session.

PyTorch and transformers are imported on this thread, when it starts: the process says Hello and heartbeats at
once instead of after the many seconds those imports take on a busy machine.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .errors import EvalError
from .proto import pb

log = logging.getLogger("brickyard.evaluator")

Answer = Callable[[object, int], None]  # (EvalResult | EvalFailed, connection)

# TEST-ONLY: milliseconds of pure-Python busy work (holding the GIL) before loading the base model, so tests can
# check that heartbeats keep flowing through a long load.
TEST_LOAD_DELAY_VARIABLE = "BRICKYARD_EVALUATOR_TEST_LOAD_DELAY_MS"


def _test_busy_wait(milliseconds: str | None) -> None:
    if not milliseconds:
        return
    log.warning("TEST-ONLY load delay active ms=%s", milliseconds)
    deadline = time.monotonic() + int(milliseconds) / 1000
    while time.monotonic() < deadline:
        sum(range(1000))


@dataclass(frozen=True)
class _Load:
    path: str
    connection: int


@dataclass(frozen=True)
class _Request:
    request: object  # pb.EvalRequest
    connection: int


class EvaluatorService:
    """Holds the model host and adapter cache; evaluates queued requests in arrival order."""

    def __init__(self, device: str, dtype: str, send: Answer, micro_batch: int = 8, threads: int = 1,
                 adapter_capacity: int = 64) -> None:
        self.device = device
        self.dtype_name = dtype
        self.threads = threads
        self.adapter_capacity = adapter_capacity
        self.micro_batch = micro_batch
        self._send = send
        self._queue: queue.Queue = queue.Queue()
        self._pending: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self._connection = 0
        self._host = None  # ModelHost once loaded
        self._host_error: EvalError | None = None
        self._failed_path: str | None = None  # the base model path whose load failed (not retried)
        self._combiner = None  # Combiner of the host's model
        self._adapters = None  # AdapterCache, made with the imports
        self._import_error: EvalError | None = None
        self._thread = threading.Thread(target=self._run, name="evaluator-compute", daemon=True)
        self.answered = 0

    # ---- called by the session thread -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def connection_changed(self, connection: int) -> None:
        """A new connection began: requests queued for older ones are skipped (the coordinator requeued them)."""
        with self._lock:
            self._connection = connection
            self._pending.clear()

    def welcome(self, base_model_path: str, connection: int) -> None:
        self._queue.put(_Load(base_model_path, connection))

    def submit(self, request, connection: int) -> None:
        key = (request.request_id, request.attempt)
        with self._lock:
            if key in self._pending:
                log.warning("duplicate request dropped request.id=%d attempt=%d", *key)
                return
            self._pending.add(key)
        self._queue.put(_Request(request, connection))

    def stop(self) -> None:
        self._queue.put(None)

    # ---- the compute thread ------------------------------------------------------------------------------

    def _current(self, connection: int) -> bool:
        with self._lock:
            return connection == self._connection

    def _import_engine(self) -> None:
        """Imports torch and the modules that use it (on this thread) and sets up torch for this process.

        The imported names become this module's globals (declared below), used by the methods that run after."""
        global AdapterCache, Combiner, tokenize_example, evaluate, ModelHost
        try:
            from .adapters import AdapterCache
            from .combination import Combiner
            from .data import tokenize_example
            from .evaluation import evaluate
            from .model_host import DTYPES, ModelHost, configure_torch
        except ImportError as error:
            self._import_error = EvalError(f"evaluator dependencies missing: {error}")
            log.error("%s", self._import_error)
            return
        configure_torch(self.threads)
        self.dtype = DTYPES[self.dtype_name]
        self._adapters = AdapterCache(self.device, self.dtype, self.adapter_capacity)

    def _run(self) -> None:
        self._import_engine()
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Load):
                self._load(item.path)
                continue
            if not self._current(item.connection):
                continue
            answer = self._answer(item.request)
            with self._lock:
                self._pending.discard((item.request.request_id, item.request.attempt))
            self._send(answer, item.connection)
            self.answered += 1

    def _load(self, path: str) -> None:
        if self._import_error is not None:
            return
        if self._host is not None and self._host.path == path:
            return
        if self._host is None and self._failed_path == path:
            return
        started = time.monotonic()
        log.info("loading base model path=%s device=%s dtype=%s", path, self.device, self.dtype)
        _test_busy_wait(os.environ.get(TEST_LOAD_DELAY_VARIABLE))
        self._host, self._combiner, self._host_error, self._failed_path = None, None, None, None
        try:
            self._host = ModelHost.load(path, self.device, self.dtype)
            self._combiner = Combiner(self._host.model)
            log.info("base model loaded seconds=%.2f", time.monotonic() - started)
        except Exception as error:  # EvalError, or e.g. a device error in model.to(): never kill this thread
            self._host_error = error if isinstance(error, EvalError) else EvalError(
                f"cannot load base model {path}: {type(error).__name__}: {error}")
            self._host, self._combiner = None, None
            self._failed_path = path
            log.error("%s", self._host_error)

    def _answer(self, request):
        started = time.monotonic()
        try:
            result = self._evaluate(request)
            result.seconds = time.monotonic() - started
            return result
        except EvalError as error:
            log.warning("request failed request.id=%d attempt=%d retryable=%s error=%s",
                        request.request_id, request.attempt, error.retryable, error)
            return pb.EvalFailed(request_id=request.request_id, attempt=request.attempt, error=error.message,
                                 retryable=error.retryable)
        except Exception as error:
            if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                return pb.EvalFailed(request_id=request.request_id, attempt=request.attempt,
                                     error=f"out of memory: {error}", retryable=True)  # a bug or an environment problem: say so, let the coordinator retry
            log.error("request crashed request.id=%d\n%s", request.request_id, traceback.format_exc())
            return pb.EvalFailed(request_id=request.request_id, attempt=request.attempt,
                                 error=f"internal error: {type(error).__name__}: {error}", retryable=True)

    def _evaluate(self, request):
        if self._import_error is not None:
            raise self._import_error
        if self._host is None:
            raise self._host_error or EvalError("no base model: the request came before any Welcome")
        kinds = {pb.EVAL_KIND_LOSS, pb.EVAL_KIND_LOSS_AND_ACCURACY, pb.EVAL_KIND_GRADIENT}
        if request.kind not in kinds:
            raise EvalError(f"request {request.request_id}: unknown eval kind {request.kind}")
        if not request.examples:
            raise EvalError(f"request {request.request_id}: no examples")
        adapters = [self._adapters.get(ref.path, ref.content_hash) for ref in request.adapters]
        examples = [tokenize_example(self._host.tokenizer, example, self._host.max_positions)
                    for example in request.examples]
        evaluation = evaluate(
            self._host, self._combiner, adapters, list(request.modules), list(request.coefficients), examples,
            gradient=request.kind == pb.EVAL_KIND_GRADIENT,
            accuracy=request.kind == pb.EVAL_KIND_LOSS_AND_ACCURACY,
            max_new_tokens=request.max_new_tokens, micro_batch=self.micro_batch)
        return pb.EvalResult(
            request_id=request.request_id, attempt=request.attempt, loss_sum=evaluation.loss_sum,
            token_count=evaluation.token_count, example_ids=evaluation.example_ids,
            example_losses=evaluation.example_losses, example_tokens=evaluation.example_tokens,
            example_correct=evaluation.example_correct, gradient=evaluation.gradient)
