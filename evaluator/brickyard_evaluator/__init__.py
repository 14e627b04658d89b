"""Brickyard evaluator: a worker process that holds a base model and answers EvalRequests.

Modules, one concern each (imported in this direction):
  errors       EvalError (message + retryable) raised by everything below
  proto        generated protobuf code (scripts/gen-proto), never edited by hand
  codec        Envelope encode/decode, protocol version
  adapters     PEFT adapter directories: content hash, PEFT scaling rules, factor loading, a cache
  combination  wrapping the base model's Linear layers with the CAT combination Σ λ s B A
  model_host   loading the base model and tokenizer once (offline), frozen, eval mode
  data         examples → token ids and completion masks (prompt/completion or chat template)
  evaluation   loss, greedy exact-match accuracy, dL/dλ for one request
  service      request queue and answers (EvalResult / EvalFailed) on a computing thread
  session      ZeroMQ DEALER session: Hello/Welcome/Reject, heartbeats, reconnect with backoff
  cli          the `brickyard-evaluator` command and its exit codes
"""

__version__ = "0.1.0"
