import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a process catches or ignores a signal, read from `/proc/PID/status` (`SigCgt`, `SigIgn`).
///
/// Why `LocalWorkerPool` asks before it sends SIGTERM: a worker starts with SIGTERM's default action (end the
/// process). Its parent catches SIGTERM through a dispatch source, that is with a signal handler, and a handler
/// does not survive exec: the child gets the default action back until its own `WorkerStopFlag` is installed. A
/// SIGTERM sent in that window ends the worker by the signal instead of its clean stop. Waiting until the
/// worker's disposition is no longer the default closes the window.
enum SignalDisposition {
    /// True when `pid` catches or ignores `signal`; nil when its status cannot be read (no procfs, no such process).
    static func handles(_ signal: Int32, pid: pid_t) -> Bool? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return handles(signal, status: status)
    }

    /// True when the `SigCgt` or `SigIgn` mask of a `/proc/PID/status` text has `signal`'s bit; nil when neither
    /// line is there or readable.
    static func handles(_ signal: Int32, status: String) -> Bool? {
        guard signal >= 1, signal <= 64 else { return nil }
        let bit = UInt64(1) << UInt64(signal - 1)
        var masks: [UInt64] = []
        for line in status.split(separator: "\n") where line.hasPrefix("SigCgt:") || line.hasPrefix("SigIgn:") {
            guard let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16) else {
                return nil
            }
            masks.append(mask)
        }
        guard masks.count == 2 else { return nil }
        return masks.contains { $0 & bit != 0 }
    }
}
