#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Progress of a running job: a single rewritten status line when stderr is a terminal (modules done/total,
/// workers alive, retries, ETA), an info log per finished module otherwise.
final class ProgressReporter {
    private let logger: Logger
    private let total: Int
    private let resumed: Int
    private let interactive: Bool
    private let started = ContinuousClock.now
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var drewLine = false

    init(total: Int, resumed: Int, logger: Logger, interactive: Bool) {
        self.total = total
        self.resumed = resumed
        self.logger = logger
        self.interactive = interactive
    }

    /// Called after each finished module and from time to time from the loop.
    func update(done: Int, workers: Int, retries: Int, finishedModule: String? = nil, force: Bool = false) {
        if !interactive {
            if let finishedModule {
                logger.info("module done", metadata: [
                    "module": "\(finishedModule)", "done": "\(done)", "total": "\(total)",
                    "workers": "\(workers)", "retries": "\(retries)",
                ])
            }
            return
        }
        let now = ContinuousClock.now
        guard force || now - lastDraw >= .milliseconds(200) else { return }
        lastDraw = now
        let line = "\r\u{1b}[2Kmodules \(done)/\(total) · workers \(workers) · retries \(retries) · ETA \(eta(done: done, now: now))"
        writeToStandardError(line)
        drewLine = true
    }

    /// Ends the status line so later output starts on a fresh line.
    func finish() {
        if drewLine { writeToStandardError("\n") }
        drewLine = false
    }

    private func eta(done: Int, now: ContinuousClock.Instant) -> String {
        let computed = done - resumed
        let remaining = total - done
        guard computed > 0, remaining > 0 else { return remaining == 0 ? "0:00" : "--:--" }
        let elapsed = now - started
        let seconds = Int((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
            / Double(computed) * Double(remaining))
        return "\(seconds / 60):" + (seconds % 60 < 10 ? "0" : "") + "\(seconds % 60)"
    }
}

/// Unbuffered write to fd 2 (avoids the non-Sendable C `stderr` global).
func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var done = 0
        while done < raw.count, let base = raw.baseAddress {
            let wrote = write(STDERR_FILENO, base + done, raw.count - done)
            if wrote <= 0 { return }
            done += wrote
        }
    }
}
