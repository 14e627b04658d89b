#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Foundation
import Coordinator
import MergeEngine

/// `brickyard merge JOB.yaml --out DIR`: plan a job and run it on a private coordinator with local worker processes
/// (the hidden `--in-process`: module after module in this process).
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the adapters of a job file into one PEFT adapter directory.",
        discussion: """
            Runs a private coordinator and --workers local worker processes (the cluster's code path). \
            Exit codes: 0 done; 1 the job failed (bad job or adapter, a module exhausted --max-attempts, output \
            exists without --force; one line on stderr names the file, key or module, and nothing is written); \
            64 bad command line; 65 --checkpoint belongs to a different job; 75 stopped by SIGTERM/SIGINT, rerun \
            the same command to resume from --checkpoint.
            """)

    @Argument(help: "The YAML job file.")
    var job: String

    @Option(name: .long, help: "Output directory (adapter_config.json, adapter_model.safetensors, merge-report.json).")
    var out: String

    @Flag(name: .long, help: "Replace the output directory if it exists and is not empty.")
    var force = false

    @Flag(name: .long, help: "Show no progress line and log only warnings and errors.")
    var quiet = false

    @Option(name: .long, help: "Local worker processes (default: the number of cores).")
    var workers: Int?

    @Option(name: .long, help: "BLAS threads per worker process.")
    var threads = 1

    @Flag(name: .customLong("in-process"), help: .hidden)
    var inProcess = false

    @Option(name: .customLong("worker-arg"), help: .hidden)
    var workerArguments: [String] = []

    @OptionGroup var runtime: MergeRuntimeOptions

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        let meter = ProgressMeter(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        do {
            let plan = try runtime.plan(jobFile: job)
            for warning in plan.warnings { StandardError.write("warning: \(warning)\n") }
            let report = inProcess
                ? try LocalMerge.run(plan: plan, outputDirectory: out, overwrite: force, progress: meter.update)
                : try runDistributed(plan: plan)
            meter.finish()
            print(MergeSummary.table(report, outputDirectory: out))
            for warning in report.qualityWarnings { StandardError.write("warning: \(warning)\n") }
        } catch {
            meter.finish()
            StandardError.write("brickyard: \(error)\n")
            throw ExitCode(RuntimeExitCode.code(for: error))
        }
    }
}

/// `\r[12/64] 3.1 modules/s ETA 00:17` on stderr while a terminal is watching.
final class ProgressMeter {
    private let enabled: Bool
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ progress: MergeProgress) {
        guard enabled else { return }
        let rate = progress.elapsedSeconds > 0 ? Double(progress.done) / progress.elapsedSeconds : 0
        let remaining = rate > 0 ? Double(progress.total - progress.done) / rate : 0
        StandardError.write("\r[\(progress.done)/\(progress.total)] \(String(format: "%.1f", rate)) modules/s ETA \(Self.clock(remaining))\u{1b}[K")
        shown = true
    }

    func finish() {
        if shown { StandardError.write("\n") }
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        let body = String(format: "%02d:%02d", minutes, secs)
        return hours > 0 ? "\(hours):\(body)" : body
    }
}

/// The short table printed after a merge.
enum MergeSummary {
    static func table(_ report: MergeReport, outputDirectory: String) -> String {
        let ranks = report.modules.map(\.outputRank)
        let rankText = (ranks.min() == ranks.max()) ? "\(ranks.first ?? 0)" : "\(ranks.min() ?? 0)–\(ranks.max() ?? 0)"
        let floors = report.modules.compactMap(\.svdFloor)
        let rows: [(String, String)] = [
            ("output", outputDirectory),
            ("method", report.job.method),
            ("adapters", "\(report.job.adapters.count)"),
            ("modules", "\(report.totals.modules)"),
            ("output rank", rankText),
        ] + errorRows(report) + (floors.isEmpty ? [] : [("mean SVD floor", String(format: "%.3e", floors.reduce(0, +) / Double(floors.count))
                                      + estimated(report.modules.compactMap(\.svdFloorStderr), of: floors.count))])
          + [("time", String(format: "%.2f s", report.totals.wallSeconds))]
        let width = rows.map(\.0.count).max() ?? 0
        if report.modules.contains(where: { $0.qualityEstimated == true }) {
            return (rows + [("quality", "estimated where exact did not fit ¼ of the merge (report: exact forces it)")])
                .map { $0.0.padding(toLength: max(width, 7), withPad: " ", startingAt: 0) + "  " + $0.1 }
                .joined(separator: "\n")
        }
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}

extension MergeSummary {
    /// Mean and max relative error; "not measured" under `report: minimal`, whose modules carry a placeholder 0
    /// that must not read as an exact merge.
    static func errorRows(_ report: MergeReport) -> [(String, String)] {
        if !report.modules.isEmpty, report.modules.allSatisfy({ $0.qualityOmitted == true }) {
            return [("relative error", "not measured (report: minimal)")]
        }
        return [
            ("mean relative error", String(format: "%.3e", report.totals.meanRelativeError)
                + estimated(report.modules.compactMap(\.relativeErrorStderr), of: report.modules.count)),
            ("max relative error", String(format: "%.3e", report.totals.maxRelativeError)),
        ]
    }

    /// " (estimated ±x)" for a mean over `count` modules of which these carry standard errors (independent
    /// estimates: the mean's error is √Σse²/count); empty when none is estimated.
    static func estimated(_ errors: [Double], of count: Int) -> String {
        guard !errors.isEmpty, count > 0 else { return "" }
        let spread = errors.reduce(0.0) { $0 + $1 * $1 }.squareRoot() / Double(count)
        return String(format: " (estimated ±%.1e)", spread)
    }
}

/// Unbuffered writes to stderr (no shared C `FILE*`, which strict concurrency rejects).
enum StandardError {
    static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
