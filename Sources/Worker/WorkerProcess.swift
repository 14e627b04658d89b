import Foundation
import Logging

/// How a `brickyard worker` process ends: always through `_exit`, with the `WorkerExit` status.
///
/// Why not return from `main`: a stop (SIGTERM, SIGINT, SIGUSR2, parent gone, Disconnect) can arrive while a task
/// computes on its own thread inside OpenBLAS. A normal `exit` runs the libraries' finalizers (`_fini`, OpenBLAS
/// frees its buffers) while that thread still uses them, which crashed 5 of 10 preempted workers with SIGSEGV.
/// ModuleMerger has no cancellation points between kernel calls, so instead of cancelling cooperatively the
/// worker says Disconnect (the coordinator requeues the task), closes its socket and terminates the ZeroMQ
/// context (so the Disconnect is flushed within the linger), then calls `_exit`: the kernel ends every thread at
/// once and no user-space teardown runs next to the computation. A worker writes no files, so skipping
/// finalizers loses nothing; standard streams are flushed first.
public enum WorkerProcess {
    /// Logs the exit status (the last line a worker writes) and ends the process without running finalizers.
    public static func exit(_ status: Int32, worker: Worker?, logger: Logger) -> Never {
        (worker?.logger ?? logger).info("worker exiting", metadata: [
            "status": "\(status)", "task.in.flight": "\(worker?.computationInFlight ?? false)"])
        fflush(nil)
        _exit(status)
    }
}

extension Worker {
    /// Whether a task's computation thread is still running (its result, if any, will be discarded).
    public var computationInFlight: Bool { orphanedComputation.map { $0.outcome == nil } ?? false }
}
