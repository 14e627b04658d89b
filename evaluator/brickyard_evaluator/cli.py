"""`brickyard-evaluator --connect tcp://HOST:PORT`: serve a Brickyard coordinator's EvalRequests.

Exit codes: 0 dismissed by the coordinator or stopped by SIGTERM/SIGINT; 1 setup failed (bad endpoint, ZeroMQ or
torch trouble); 2 rejected by the coordinator (reason on stderr); 3 coordinator unreachable after
--max-failed-connections connections without a Welcome; 64 bad command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .session import ExitCode

DEVICES = ("cpu", "cuda")
CLI_DTYPES = ("float32", "bfloat16")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a bad command line; 2 means "rejected" here, so usage errors exit 64."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"brickyard-evaluator: {message}\n")
        sys.exit(ExitCode.USAGE)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="brickyard-evaluator", description=__doc__.split("\n\n")[0],
                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", required=True, metavar="ENDPOINT",
                        help="coordinator endpoint, e.g. tcp://HOST:5555 or ipc:///path")
    parser.add_argument("--device", choices=DEVICES, default="cpu")
    parser.add_argument("--dtype", choices=CLI_DTYPES, default="float32")
    parser.add_argument("--threads", type=_positive, default=1,
                        help="torch threads (default 1: run one evaluator per core)")
    parser.add_argument("--id", help="evaluator name in logs and reports (default HOSTNAME-PID)")
    parser.add_argument("--micro-batch", type=_positive, default=8,
                        help="examples per forward pass (results are reproducible for a fixed value)")
    parser.add_argument("--heartbeat-ms", type=_positive, default=1000,
                        help="heartbeat interval until the coordinator's Welcome sets its own")
    parser.add_argument("--liveness", type=_positive, default=3, help="missed intervals before the coordinator counts as lost")
    parser.add_argument("--reconnect-initial-ms", type=_positive, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--reconnect-max-ms", type=_positive, default=32_000, help="upper bound of the reconnect backoff")
    parser.add_argument("--max-failed-connections", type=_positive, default=None,
                        help="exit 3 after this many connections without a Welcome (default: retry forever)")
    parser.add_argument("--exit-with-parent", type=int, default=None, metavar="PID",
                        help="leave when process PID is gone (local evaluators of a coordinator)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--protocol-version", type=int, default=None, help=argparse.SUPPRESS)  # tests only
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s")
    code = ExitCode.SETUP_FAILED
    try:
        code = _run(args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # The compute thread may be inside torch: leave without joining it.
        os._exit(code)


def _run(args) -> int:
    # torch is imported later, on the compute thread (see service): Hello goes out at once.
    try:
        import zmq  # noqa: F401
        from google.protobuf import message  # noqa: F401

        from .codec import PROTOCOL_VERSION
        from .service import EvaluatorService
        from .session import Session, SessionConfig, StopFlag
    except ImportError as error:
        sys.stderr.write(f"brickyard-evaluator: cannot import the evaluator's dependencies: {error}\n")
        return ExitCode.SETUP_FAILED
    if args.device == "cuda":
        try:
            import torch
        except ImportError as error:
            sys.stderr.write(f"brickyard-evaluator: cannot import torch: {error}\n")
            return ExitCode.SETUP_FAILED
        if not torch.cuda.is_available():
            sys.stderr.write("brickyard-evaluator: --device cuda but torch sees no CUDA device\n")
            return ExitCode.SETUP_FAILED
    config = SessionConfig(endpoint=args.connect, device=args.device, dtype=args.dtype, threads=args.threads,
                           heartbeat_ms=args.heartbeat_ms, liveness=args.liveness,
                           reconnect_initial_ms=args.reconnect_initial_ms, reconnect_max_ms=args.reconnect_max_ms,
                           max_failed_connections=args.max_failed_connections,
                           protocol_version=args.protocol_version if args.protocol_version is not None else PROTOCOL_VERSION,
                           exit_with_parent=args.exit_with_parent)
    if args.id:
        config.worker_id = args.id
    stop = StopFlag()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, _frame: stop.request(signal.Signals(signum).name))
    session = Session(config, lambda send: EvaluatorService(args.device, args.dtype, send,
                                                            micro_batch=args.micro_batch, threads=args.threads),
                      stop)
    end = session.run()
    if end.code == ExitCode.REJECTED:
        sys.stderr.write(f"brickyard-evaluator: rejected by the coordinator: {end.reason}\n")
    elif end.code == ExitCode.UNREACHABLE:
        sys.stderr.write(f"brickyard-evaluator: {end.reason} after {args.max_failed_connections} connections\n")
    elif end.code == ExitCode.SETUP_FAILED:
        sys.stderr.write(f"brickyard-evaluator: {end.reason}\n")
    return end.code
