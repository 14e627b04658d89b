"""Real ZeroMQ round trips: an in-test ROUTER "coordinator" and a spawned `brickyard-evaluator` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import zmq

from brickyard_evaluator import codec
from brickyard_evaluator.adapters import AdapterCache, content_hash
from brickyard_evaluator.combination import Combiner
from brickyard_evaluator.data import tokenize_example
from brickyard_evaluator.evaluation import evaluate, greedy_completion, resolve_modules
from brickyard_evaluator.model_host import ModelHost
from brickyard_evaluator.proto import pb
from tiny import Example, random_examples

EVALUATOR_ROOT = Path(__file__).resolve().parents[1]
HEARTBEAT_MS = 200
LIVENESS = 10


def evaluator_command() -> list[str]:
    script = Path(sys.executable).parent / "brickyard-evaluator"
    return [str(script)] if script.exists() else [sys.executable, "-m", "brickyard_evaluator"]


class FakeCoordinator:
    """A ROUTER on an ipc:// path in a temp dir that heartbeats its peer while waiting for messages."""

    def __init__(self, directory: Path) -> None:
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"ipc://{directory}/coordinator.sock"
        self.router.bind(self.endpoint)
        self.peer: bytes | None = None
        self.identities: list[bytes] = []
        self.heartbeats_received = 0
        self.heartbeating = True
        self.sequence = 0

    def send(self, body, version: int = codec.PROTOCOL_VERSION) -> None:
        self.send_raw(codec.encode(body, version))

    def send_raw(self, frame: bytes) -> None:
        assert self.peer is not None
        self.router.send_multipart([self.peer, frame])

    def receive(self, kind: str, timeout: float = 180.0):
        """Waits for a message of `kind` (heartbeats counted, not returned); returns (version, body)."""
        deadline = time.monotonic() + timeout
        next_beat = time.monotonic()
        while time.monotonic() < deadline:
            if self.peer is not None and self.heartbeating and time.monotonic() >= next_beat:
                self.sequence += 1
                self.send(pb.Heartbeat(sequence=self.sequence))
                next_beat = time.monotonic() + HEARTBEAT_MS / 1000
            if not self.router.poll(50):
                continue
            identity, frame = self.router.recv_multipart()
            message = codec.decode(frame)
            if identity not in self.identities:
                self.identities.append(identity)
            self.peer = identity
            if message.kind == "heartbeat":
                self.heartbeats_received += 1
                if kind != "heartbeat":
                    continue
            if message.kind != kind:
                raise AssertionError(f"expected {kind}, got {message.kind}: {message.body}")
            return message.version, message.body
        raise AssertionError(f"no {kind} within {timeout} s")

    def close(self) -> None:
        self.router.close(linger=0)
        self.context.term()


@pytest.fixture
def coordinator(tmp_path):
    fake = FakeCoordinator(tmp_path)
    yield fake
    fake.close()


def spawn(endpoint: str, *extra: str) -> subprocess.Popen:
    # This checkout's code, whatever checkout the shared venv's editable install points at.
    path = os.pathsep.join(filter(None, [str(EVALUATOR_ROOT), os.environ.get("PYTHONPATH", "")]))
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=path)
    return subprocess.Popen(evaluator_command() + ["--connect", endpoint, "--heartbeat-ms", str(HEARTBEAT_MS),
                                                  "--reconnect-initial-ms", "100", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def finish(process: subprocess.Popen, timeout: float = 120.0) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"evaluator did not exit; stderr:\n{stderr}")
    return process.returncode, stderr


def welcome(coordinator: FakeCoordinator, base: Path) -> None:
    coordinator.send(pb.Welcome(job_id="job-1", heartbeat_interval_ms=HEARTBEAT_MS, heartbeat_liveness=LIVENESS,
                                base_model_path=str(base)))


def tokenized_prompt_text(host: ModelHost, example) -> str:
    """The prompt's text without the BOS the tokenizer adds again."""
    return host.tokenizer.decode(example.ids[: example.prompt_length], skip_special_tokens=True)


def request_for(request_id: int, kind, adapters, examples, coefficients=(), modules=(),
                max_new_tokens=0) -> pb.EvalRequest:
    request = pb.EvalRequest(job_id="job-1", request_id=request_id, attempt=1, kind=kind,
                             modules=list(modules), coefficients=list(coefficients), max_new_tokens=max_new_tokens)
    for path in adapters:
        request.adapters.add(path=str(path), content_hash=content_hash(path))
    for example in examples:
        request.examples.add(id=example.id, prompt=example.prompt, completion=example.completion,
                             messages_json=example.messages_json)
    return request


def test_round_trip_loss_gradient_accuracy_and_errors(coordinator, tiny_base, tiny_adapters, fixture_adapters):
    process = spawn(coordinator.endpoint, "--id", "ev-test")
    try:
        version, hello = coordinator.receive("hello")
        assert version == codec.PROTOCOL_VERSION
        assert hello.role == pb.PEER_ROLE_EVALUATOR and hello.worker_id == "ev-test"
        assert (hello.device, hello.dtype, hello.pid) == ("cpu", "float32", process.pid)
        welcome(coordinator, tiny_base)
        # A malformed frame and a frame of two parts are logged and dropped; the evaluator keeps serving.
        coordinator.send_raw(b"\xff\x00 not a protobuf envelope")
        coordinator.router.send_multipart([coordinator.peer, b"part one", b"part two"])

        examples = random_examples(5, 100, seed=21, chat_every=2)
        adapters = tiny_adapters[:2]
        local_host = ModelHost.load(str(tiny_base))
        cache = AdapterCache("cpu", torch.float32)
        loaded = [cache.get(str(path)) for path in adapters]
        modules = resolve_modules(loaded, [])
        lam = [0.1 * (k % 7) - 0.2 for k in range(len(modules) * len(adapters))]
        tokenized = [tokenize_example(local_host.tokenizer, e) for e in examples]
        expected = evaluate(local_host, Combiner(local_host.model), loaded, modules, lam, tokenized, gradient=True)

        beats_before = coordinator.heartbeats_received
        coordinator.send(request_for(7, pb.EVAL_KIND_GRADIENT, adapters, examples, lam, modules))
        _, result = coordinator.receive("eval_result")
        assert (result.request_id, result.attempt) == (7, 1)
        assert list(result.example_ids) == [e.id for e in examples]
        assert result.loss_sum == pytest.approx(expected.loss_sum, rel=1e-6)
        assert result.token_count == expected.token_count
        assert list(result.gradient) == pytest.approx(expected.gradient, rel=1e-5, abs=1e-6)
        assert coordinator.heartbeats_received > beats_before, "evaluator sent no heartbeat while loading"

        # accuracy of the base model: example 0's completion is the base's own greedy continuation (3 tokens)
        greedy = greedy_completion(local_host.model, tokenized[0], 3, local_host.eos_token_ids(), "cpu")
        assert len(greedy) == 3
        scored = [Example(100, prompt=tokenized_prompt_text(local_host, tokenized[0]),
                          completion=local_host.tokenizer.decode(greedy)), examples[1]]
        coordinator.send(request_for(8, pb.EVAL_KIND_LOSS_AND_ACCURACY, [], scored, max_new_tokens=3))
        _, result = coordinator.receive("eval_result")
        assert result.request_id == 8 and list(result.example_correct)[0] is True
        assert len(result.example_correct) == 2
        assert not result.gradient

        # an adapter of another model (hidden 64 vs 32): not retryable, names the adapter and the module
        bad = fixture_adapters[0]
        coordinator.send(request_for(9, pb.EVAL_KIND_LOSS, [bad], examples))
        _, failed = coordinator.receive("eval_failed")
        assert failed.request_id == 9 and not failed.retryable
        assert str(bad) in failed.error and "model.layers.0" in failed.error and "differs from the base" in failed.error

        # wrong coefficient count
        coordinator.send(request_for(10, pb.EVAL_KIND_LOSS, adapters, examples, coefficients=[1.0, 2.0]))
        _, failed = coordinator.receive("eval_failed")
        assert failed.request_id == 10 and not failed.retryable and "coefficients" in failed.error

        # still serving after the failures
        coordinator.send(request_for(11, pb.EVAL_KIND_LOSS, adapters, examples, lam, modules))
        _, result = coordinator.receive("eval_result")
        assert result.loss_sum == pytest.approx(expected.loss_sum, rel=1e-6)

        coordinator.send(pb.Disconnect(reason="job done"))
        code, stderr = finish(process)
        assert code == 0, stderr
        assert "malformed" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_reject_of_another_protocol_version_exits_2_with_the_reason(coordinator):
    process = spawn(coordinator.endpoint, "--protocol-version", "99")
    version, hello = coordinator.receive("hello")
    assert version == 99
    reason = f"protocol version {version} is not supported; this coordinator speaks {codec.PROTOCOL_VERSION}"
    coordinator.send(pb.Reject(reason=reason))
    code, stderr = finish(process)
    assert code == 2
    assert f"rejected by the coordinator: {reason}" in stderr


def test_silent_coordinator_gets_a_new_hello_from_a_new_identity(coordinator, tiny_base):
    process = spawn(coordinator.endpoint)
    try:
        coordinator.receive("hello")
        coordinator.send(pb.Welcome(job_id="j", heartbeat_interval_ms=100, heartbeat_liveness=3,
                                    base_model_path=str(tiny_base)))
        coordinator.heartbeating = False  # go silent: the evaluator must give up on this connection
        coordinator.receive("hello", timeout=60)
        assert len(coordinator.identities) == 2 and coordinator.identities[0] != coordinator.identities[1]
        process.send_signal(signal.SIGTERM)
        code, stderr = finish(process)
        assert code == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_sends_disconnect_and_exits_0(coordinator, tiny_base):
    process = spawn(coordinator.endpoint)
    try:
        coordinator.receive("hello")
        welcome(coordinator, tiny_base)
        coordinator.receive("heartbeat")
        process.send_signal(signal.SIGTERM)
        _, disconnect = coordinator.receive("disconnect", timeout=30)
        assert "SIGTERM" in disconnect.reason
        code, stderr = finish(process)
        assert code == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_unreachable_coordinator_exits_3(tmp_path):
    process = spawn(f"ipc://{tmp_path}/nobody.sock", "--max-failed-connections", "2", "--liveness", "2")
    code, stderr = finish(process, timeout=180)
    assert code == 3, stderr
    assert "unreachable" in stderr


def test_bad_command_line_exits_64():
    process = subprocess.run(evaluator_command() + ["--connect", "tcp://127.0.0.1:1", "--dtype", "float16"],
                             capture_output=True, text=True, timeout=180,
                             env=dict(os.environ, PYTHONPATH=str(EVALUATOR_ROOT)))
    assert process.returncode == 64
    assert "--dtype" in process.stderr


def test_unloadable_base_model_fails_every_request_and_keeps_serving(coordinator, tmp_path):
    process = spawn(coordinator.endpoint)
    try:
        coordinator.receive("hello")
        missing = tmp_path / "no-model"
        welcome(coordinator, missing)
        examples = random_examples(2, 100, seed=1)
        for request_id in (1, 2):
            coordinator.send(request_for(request_id, pb.EVAL_KIND_LOSS, [], examples))
            _, failed = coordinator.receive("eval_failed")
            assert failed.request_id == request_id and not failed.retryable
            assert f"cannot load base model {missing}" in failed.error
        coordinator.send(pb.Disconnect(reason="done"))
        code, stderr = finish(process)
        assert code == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_exit_with_parent_leaves_when_the_parent_is_killed(coordinator, tmp_path):
    """A SIGKILLed parent (here a shell that started the evaluator) makes the evaluator leave by itself."""
    pid_file = tmp_path / "evaluator.pid"
    command = " ".join(evaluator_command() + ["--connect", coordinator.endpoint, "--heartbeat-ms", str(HEARTBEAT_MS),
                                              "--exit-with-parent", "$$"])
    env = dict(os.environ, PYTHONPATH=str(EVALUATOR_ROOT), HF_HUB_OFFLINE="1")
    # the shell forks the evaluator (not exec: `; wait`) and records its pid, then waits for it
    shell = subprocess.Popen(["bash", "-c", f"{command} & echo $! > {pid_file}; wait"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        coordinator.receive("hello")
        evaluator_pid = int(pid_file.read_text())
        shell.kill()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(evaluator_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(evaluator_pid, signal.SIGKILL)
            raise AssertionError("the evaluator outlived its parent")
    finally:
        shell.kill()
        shell.wait()


def test_heartbeats_keep_flowing_through_a_long_model_load(coordinator, tiny_base):
    """A 3 s load that holds the GIL (plus the real load), with a 2 s liveness window: the evaluator keeps
    heartbeating (the session runs on its own thread), stays on its first connection, then answers."""
    os.environ["BRICKYARD_EVALUATOR_TEST_LOAD_DELAY_MS"] = "3000"
    try:
        process = spawn(coordinator.endpoint)
    finally:
        del os.environ["BRICKYARD_EVALUATOR_TEST_LOAD_DELAY_MS"]
    try:
        coordinator.receive("hello")
        coordinator.send(pb.Welcome(job_id="j", heartbeat_interval_ms=HEARTBEAT_MS, heartbeat_liveness=10,
                                    base_model_path=str(tiny_base)))
        coordinator.send(request_for(1, pb.EVAL_KIND_LOSS, [], random_examples(2, 100, seed=2)))
        started = time.monotonic()
        _, result = coordinator.receive("eval_result")  # a second Hello here would mean a lost connection
        assert time.monotonic() - started >= 3.0
        assert coordinator.heartbeats_received >= 10  # one per 200 ms over the load
        assert len(coordinator.identities) == 1
        coordinator.send(pb.Disconnect(reason="done"))
        code, stderr = finish(process)
        assert code == 0, stderr
        assert "TEST-ONLY load delay" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
