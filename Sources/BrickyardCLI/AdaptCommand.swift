import Adaptive
import ArgumentParser
import Coordinator
import Foundation
import MergeEngine

/// `brickyard adapt JOB.yaml --out DIR`: select adapters and learn merge coefficients on task data.
struct AdaptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Learn how to merge a pool of adapters from task data (selection + coefficients), then write the merge.")

    @Argument(help: "The YAML job file (adapters, base_model, data, adapt).")
    var job: String

    @Option(name: .long, help: "Output directory (the PEFT adapter, adapt-report.json, coefficients.json, coefficients.png).")
    var out: String

    @Flag(name: .long, help: "Replace the output directory if it exists and is not empty.")
    var force = false

    @Flag(name: .long, help: "Show no progress line and log only warnings and errors.")
    var quiet = false

    @Option(name: .long, help: "Checkpoint directory (default: OUT.adapt-checkpoint next to the output; removed after success). A rerun resumes from it.")
    var checkpoint: String?

    @OptionGroup var evaluatorOptions: EvaluatorOptions

    func run() throws {
        let meter = AdaptProgressLine(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        do {
            let spec = try AdaptJob.load(path: job)
            let logger = evaluatorOptions.makeLogger(label: "brickyard.adapt", quiet: quiet)
            let stop = StopSignal()
            stop.install()
            let outcome = try AdaptCoordinator.run(job: spec, outputDirectory: out, overwrite: force, checkpointDirectory: checkpoint,
                                                   runtime: evaluatorOptions.runtime(), logger: logger, stop: stop,
                                                   progress: meter.update)
            meter.finish()
            print(AdaptSummary.table(outcome, outputDirectory: out))
        } catch {
            meter.finish()
            StandardError.write("brickyard: \(error)\n")
            throw ExitCode(RuntimeExitCode.code(for: error))
        }
    }
}

/// `\r[adamw 12/100] train 1.234 val 1.201 ETA 00:31` on stderr while a terminal is watching.
final class AdaptProgressLine {
    private let enabled: Bool
    private var shown = false
    private var firstStep: (step: Int, seconds: Double)?

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ progress: AdaptProgress) {
        guard enabled else { return }
        var text = "\r[\(progress.phase) \(progress.step)/\(progress.totalSteps)]"
        if let train = progress.trainLoss { text += String(format: " train %.4f", train) }
        if let validation = progress.validationLoss { text += String(format: " val %.4f", validation) }
        if progress.step > 0 {
            if firstStep == nil { firstStep = (progress.step, progress.elapsedSeconds) }
            if let first = firstStep, progress.step > first.step {
                let rate = (progress.elapsedSeconds - first.seconds) / Double(progress.step - first.step)
                text += " ETA " + ProgressMeter.clock(rate * Double(max(0, progress.totalSteps - progress.step)))
            }
        }
        StandardError.write(text + "\u{1b}[K")
        shown = true
    }

    func finish() {
        if shown { StandardError.write("\n") }
        shown = false
    }
}

/// The table printed after `adapt`.
enum AdaptSummary {
    static func table(_ outcome: AdaptJobOutcome, outputDirectory: String) -> String {
        let report = outcome.report
        func score(_ key: String) -> String {
            guard let s = report.scores[key] else { return "-" }
            return String(format: "loss %.4f  ppl %.3f", s.loss, s.perplexity) + (s.accuracy.map { String(format: "  acc %.1f%%", 100 * $0) } ?? "")
        }
        var rows: [(String, String)] = [
            ("output", outputDirectory),
            ("selected", "\(report.coefficients.adapters.count) of \(report.pool.count) (\(report.selection))"),
            ("optimizer", "\(report.spec.optimizer.rawValue), \(report.spec.coefficients.rawValue), \(report.spec.activation.rawValue)"),
            ("best step", report.bestStep.map(String.init) ?? "-"),
            ("base", score("base")),
            ("uniform (selection)", score("uniform_selection")),
        ]
        if report.scores["uniform_pool"] != nil { rows.append(("uniform (pool)", score("uniform_pool"))) }
        rows += [
            ("learned", score("learned")),
            ("evaluator requests", "\(outcome.requestsAnswered) (\(outcome.retries) retried)"),
            ("time", String(format: "%.2f s", outcome.wallSeconds)),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}
