"""The evaluator's ZeroMQ session with a coordinator (the worker side of the Brickyard session rules).

A DEALER connects to the coordinator's ROUTER and says Hello (role evaluator); the coordinator answers Welcome
(heartbeat interval and liveness, base model path) or Reject (the evaluator exits 2). Both sides send a Heartbeat
every interval; a coordinator silent for `liveness` intervals is lost: the socket is closed and, after an exponential
backoff (1 s doubling to 32 s), a new socket with a new identity says Hello again. Disconnect from the coordinator
ends the process (0); SIGTERM/SIGINT sends Disconnect and ends it (0).

This thread owns both sockets: the DEALER and an inproc PAIR on which the compute thread hands over its answers,
so heartbeats keep flowing while a model loads or a request computes. Malformed frames are logged and dropped.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field

import zmq

from . import __version__, codec
from .codec import MalformedMessage
from .proto import pb
from .service import EvaluatorService

log = logging.getLogger("brickyard.evaluator")


class ExitCode:
    """Process exit statuses of `brickyard-evaluator`."""

    SUCCESS = 0          # dismissed by the coordinator (Disconnect) or stopped by SIGTERM/SIGINT
    SETUP_FAILED = 1     # bad endpoint, ZeroMQ failure
    REJECTED = 2         # the coordinator sent Reject (e.g. protocol version); the reason is on stderr
    UNREACHABLE = 3      # --max-failed-connections consecutive connections without a Welcome
    USAGE = 64           # bad command line


@dataclass
class SessionConfig:
    endpoint: str
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 1
    heartbeat_ms: int = 1000
    liveness: int = 3
    reconnect_initial_ms: int = 1000
    reconnect_max_ms: int = 32_000
    max_failed_connections: int | None = None
    protocol_version: int = codec.PROTOCOL_VERSION  # tests only: stamp envelopes with another version
    exit_with_parent: int | None = None


class StopFlag:
    """Set from a signal handler or the parent watcher; read by the session loop."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass
class SessionEnd:
    """How the process ends: exit code and, for a Reject, the coordinator's reason."""

    code: int
    reason: str = ""


class _Lost(Exception):
    def __init__(self, welcomed: bool) -> None:
        self.welcomed = welcomed


class _Finished(Exception):
    def __init__(self, end: SessionEnd) -> None:
        self.end = end


class Session:
    """Runs connections until dismissed, rejected, stopped, or out of connection attempts."""

    def __init__(self, config: SessionConfig, service_factory, stop: StopFlag) -> None:
        self.config = config
        self.stop = stop
        self.context = zmq.Context()
        outbox_address = f"inproc://evaluator-outbox-{id(self)}"
        self._outbox = self.context.socket(zmq.PAIR)
        self._outbox.bind(outbox_address)
        self._answers = self.context.socket(zmq.PAIR)  # owned by the compute thread from here on
        self._answers.connect(outbox_address)
        self._answers_lock = threading.Lock()
        self.service: EvaluatorService = service_factory(self._send_answer)
        self.nonce = format(random.getrandbits(32), "x")
        self._parent_is_direct = config.exit_with_parent is not None and os.getppid() == config.exit_with_parent

    # called on the compute thread
    def _send_answer(self, body, connection: int) -> None:
        frame = connection.to_bytes(8, "little") + codec.encode(body, self.config.protocol_version)
        with self._answers_lock:
            if not self._answers.closed:
                self._answers.send(frame)

    def run(self) -> SessionEnd:
        self.service.start()
        backoff = self.config.reconnect_initial_ms
        failed = 0
        connection = 0
        try:
            while True:
                connection += 1
                self.service.connection_changed(connection)
                try:
                    self._connect_and_serve(connection)
                except _Finished as finished:
                    return finished.end
                except _Lost as lost:
                    if lost.welcomed:
                        failed, backoff = 0, self.config.reconnect_initial_ms
                    else:
                        failed += 1
                    limit = self.config.max_failed_connections
                    if limit is not None and failed >= limit:
                        log.error("coordinator unreachable; giving up attempts=%d endpoint=%s", failed,
                                  self.config.endpoint)
                        return SessionEnd(ExitCode.UNREACHABLE, f"coordinator {self.config.endpoint} unreachable")
                    log.warning("coordinator silent; reconnecting delay.ms=%d", backoff)
                    if not self._pause(backoff / 1000):
                        return SessionEnd(ExitCode.SUCCESS)
                    backoff = min(backoff * 2, self.config.reconnect_max_ms)
        finally:
            self.service.stop()
            with self._answers_lock:
                self._answers.close(linger=0)
            self._outbox.close(linger=0)
            # Waits (up to the DEALER's linger) until a last Disconnect has left: the process exits right after.
            self.context.term()

    def _pause(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop_reason() is not None:
                return False
            self._drain_stale_answers()
            time.sleep(0.02)
        return True

    def _drain_stale_answers(self) -> None:
        while self._outbox.poll(0):
            self._outbox.recv()  # answers to a lost connection: the coordinator requeued those requests

    def _parent_gone(self, parent: int) -> bool:
        # Our own parent: reparenting is the signal (a SIGKILLed parent may linger as a zombie that kill(0) still
        # finds). Any other process: gone when kill(0) no longer finds it.
        if self._parent_is_direct:
            return os.getppid() != parent
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def _stop_reason(self) -> str | None:
        parent = self.config.exit_with_parent
        if parent is not None and self.stop.reason is None and self._parent_gone(parent):
            self.stop.request(f"parent process {parent} exited")
        return self.stop.reason

    def _connect_and_serve(self, connection: int) -> None:
        config = self.config
        identity = f"{config.worker_id}/{self.nonce}/{connection}".encode()[-255:]
        dealer = self.context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, identity)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.SNDTIMEO, config.heartbeat_ms * config.liveness)
        try:
            dealer.connect(config.endpoint)
        except zmq.ZMQError as error:
            dealer.close(linger=0)
            log.error("cannot connect endpoint=%s error=%s", config.endpoint, error)
            raise _Finished(SessionEnd(ExitCode.SETUP_FAILED, f"cannot connect to {config.endpoint}: {error}"))
        try:
            self._serve(dealer, connection)
        except _Finished as finished:
            # Let a Disconnect we just queued reach the coordinator before the socket goes.
            dealer.close(linger=500 if finished.end.code == ExitCode.SUCCESS else 0)
            raise
        except BaseException:
            dealer.close(linger=0)
            raise

    def _send(self, dealer, body, welcomed: bool) -> None:
        try:
            dealer.send(codec.encode(body, self.config.protocol_version))
        except zmq.Again:
            raise _Lost(welcomed) from None

    def _serve(self, dealer, connection: int) -> None:
        config = self.config
        interval = config.heartbeat_ms / 1000
        liveness = config.liveness
        welcomed = False
        sequence = 0
        hello = pb.Hello(worker_id=config.worker_id, version=__version__, cores=os.cpu_count() or 1,
                         blas_threads=config.threads, pid=os.getpid(), hostname=socket.gethostname(),
                         role=pb.PEER_ROLE_EVALUATOR, device=config.device, dtype=config.dtype)
        self._send(dealer, hello, welcomed)
        log.info("connecting endpoint=%s", config.endpoint)
        last_heard = time.monotonic()
        next_heartbeat = time.monotonic()
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(self._outbox, zmq.POLLIN)
        while True:
            reason = self._stop_reason()
            if reason is not None:
                if welcomed:
                    try:
                        self._send(dealer, pb.Disconnect(reason=f"evaluator stopping ({reason})"), welcomed)
                    except _Lost:
                        pass
                log.info("evaluator stopping reason=%s", reason)
                raise _Finished(SessionEnd(ExitCode.SUCCESS))
            now = time.monotonic()
            until = min(last_heard + interval * liveness - now, (next_heartbeat - now) if welcomed else 0.1, 0.1)
            events = dict(poller.poll(max(0, int(until * 1000))))
            if dealer in events:
                for _ in range(256):  # bounded: heartbeats are never starved by a flood
                    try:
                        frame = dealer.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if dealer.getsockopt(zmq.RCVMORE):
                        while dealer.getsockopt(zmq.RCVMORE):
                            dealer.recv()
                        log.warning("dropped message with more than one frame")
                        continue
                    heard, welcomed, interval, liveness = self._handle(frame, connection, welcomed, interval,
                                                                        liveness)
                    if heard:
                        last_heard = time.monotonic()
            if self._outbox in events:
                for _ in range(256):
                    try:
                        frame = self._outbox.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if int.from_bytes(frame[:8], "little") != connection:
                        continue
                    try:
                        dealer.send(frame[8:])
                    except zmq.Again:
                        raise _Lost(welcomed) from None
            now = time.monotonic()
            if now - last_heard > interval * liveness and dealer.poll(0):
                continue  # messages are waiting: we were slow (a long GIL-holding call), the coordinator was not silent
            if now - last_heard > interval * liveness:
                log.warning("no message from the coordinator within liveness silence.ms=%d",
                            int((now - last_heard) * 1000))
                raise _Lost(welcomed)
            if welcomed and now >= next_heartbeat:
                sequence += 1
                self._send(dealer, pb.Heartbeat(sequence=sequence), welcomed)
                next_heartbeat = now + interval

    def _handle(self, frame: bytes, connection: int, welcomed: bool, interval: float, liveness: int):
        """Acts on one frame; returns (counts as heard, welcomed, interval, liveness)."""
        try:
            message = codec.decode(frame)
        except MalformedMessage as error:
            log.warning("dropped malformed message from the coordinator: %s", error)
            return False, welcomed, interval, liveness
        if message.kind == "reject":  # honoured whatever its version: it is the coordinator's last word
            raise _Finished(SessionEnd(ExitCode.REJECTED, message.body.reason or "no reason given"))
        if message.version != codec.PROTOCOL_VERSION:
            log.warning("dropped message with another protocol version version=%d expected=%d", message.version,
                        codec.PROTOCOL_VERSION)
            return False, welcomed, interval, liveness
        body = message.body
        if message.kind == "welcome":
            if not welcomed:
                welcomed = True
                if body.heartbeat_interval_ms > 0:
                    interval = body.heartbeat_interval_ms / 1000
                if body.heartbeat_liveness > 0:
                    liveness = body.heartbeat_liveness
                log.info("welcomed job.id=%s heartbeat.ms=%d liveness=%d base_model=%s", body.job_id,
                         int(interval * 1000), liveness, body.base_model_path)
                self.service.welcome(body.base_model_path, connection)
        elif message.kind == "disconnect":
            log.info("coordinator dismissed the evaluator reason=%s", body.reason)
            raise _Finished(SessionEnd(ExitCode.SUCCESS, body.reason))
        elif message.kind == "heartbeat":
            pass
        elif message.kind == "eval_request":
            if not welcomed:
                log.warning("dropped request received before welcome request.id=%d", body.request_id)
            else:
                self.service.submit(body, connection)
        else:
            log.warning("dropped message an evaluator does not take kind=%s", message.kind)
        return True, welcomed, interval, liveness
