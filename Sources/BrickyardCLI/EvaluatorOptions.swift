import ArgumentParser
import Coordinator
import Foundation
import Logging

/// Options shared by `brickyard adapt` and `brickyard eval`: where the evaluators come from.
struct EvaluatorOptions: ParsableArguments {
    @Option(name: .long, help: "Local evaluator processes to start (default 1; 0 with --bind serves remote evaluators only).")
    var evaluators: Int?

    @Option(name: .customLong("evaluator-command"), help: "The evaluator program and its arguments (default: $BRICKYARD_EVALUATOR, else ~/.cache/brickyard/venv/bin/brickyard-evaluator).")
    var evaluatorCommand: String?

    @Option(name: .long, help: "Serve remote evaluators on this ZeroMQ endpoint (e.g. tcp://0.0.0.0:5555); local ones are started only with --evaluators.")
    var bind: String?

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in milliseconds.")
    var heartbeatMilliseconds = 1000

    @Option(name: .long, help: "Heartbeat intervals an evaluator may miss before its request is requeued.")
    var liveness = 10

    @Option(name: .customLong("max-attempts"), help: "Failures or lost evaluators one request may suffer before the job fails.")
    var maxAttempts = 3

    @Option(name: .customLong("endpoint-file"), help: .hidden)
    var endpointFile: String?

    @Option(name: .customLong("evaluator-arg"), help: "Extra argument for local evaluators (repeatable), e.g. --evaluator-arg=--dtype --evaluator-arg=bfloat16.")
    var evaluatorArguments: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    func validate() throws {
        guard heartbeatMilliseconds >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        guard liveness >= 1, maxAttempts >= 1 else { throw ValidationError("--liveness and --max-attempts must be at least 1") }
        if let evaluators, evaluators < 0 { throw ValidationError("--evaluators must be ≥ 0") }
        if bind == nil, evaluators == 0 { throw ValidationError("--evaluators 0 needs --bind (someone has to evaluate)") }
    }

    /// The evaluator command line: the option, then $BRICKYARD_EVALUATOR, then the venv's console script.
    var command: [String] {
        let text = evaluatorCommand ?? ProcessInfo.processInfo.environment["BRICKYARD_EVALUATOR"]
        guard let text, !text.isEmpty else { return [EvaluatorRuntimeOptions.defaultEvaluatorPath] }
        return text.split(separator: " ").map(String.init)
    }

    func runtime() -> EvaluatorRuntimeOptions {
        let local = evaluators ?? (bind == nil ? 1 : 0)
        return EvaluatorRuntimeOptions(
            localEvaluators: local, evaluatorCommand: command, bind: bind,
            server: EvaluatorServerOptions(bind: bind ?? "", heartbeatInterval: .milliseconds(heartbeatMilliseconds),
                                           liveness: liveness, maxAttempts: maxAttempts, endpointFile: endpointFile),
            extraEvaluatorArguments: evaluatorArguments + (evaluatorLogLevel.map { ["--log-level", $0] } ?? []))
    }

    /// The evaluator's level for ours (it knows debug, info, warning, error).
    private var evaluatorLogLevel: String? {
        switch logLevel {
        case "trace", "debug": "debug"
        case "info", "notice": "info"
        case "warning": "warning"
        case "error", "critical": "error"
        default: nil
        }
    }

    /// Logs to stderr at the chosen level (default: warning on a terminal, where the progress line shows; info otherwise).
    func makeLogger(label: String, quiet: Bool) -> Logger {
        let level = logLevel.flatMap(Logger.Level.init(rawValue:)) ?? (quiet || isatty(STDERR_FILENO) != 0 ? .warning : .info)
        let logger = StderrLogging.bootstrap(label: label, level: level)
        BLASCoreSelection.logChoice(logger)
        return logger
    }
}
