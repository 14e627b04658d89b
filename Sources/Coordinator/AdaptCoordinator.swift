import Adaptive
import AdapterIO
import Foundation
import Logging
import MergeEngine
import WireProtocol

/// Where the evaluators of an adapt or eval job come from, and how they are served.
public struct EvaluatorRuntimeOptions: Sendable {
    /// Local evaluator processes to start (0 with `bind`: serve remote evaluators only).
    public var localEvaluators: Int
    /// The evaluator program and its own arguments.
    public var evaluatorCommand: [String]
    /// Endpoint for remote evaluators; nil: a private ipc:// endpoint for the local ones.
    public var bind: String?
    public var server: EvaluatorServerOptions
    /// Extra arguments for local evaluators (`--device`, `--dtype`, hidden test options).
    public var extraEvaluatorArguments: [String]

    public init(localEvaluators: Int, evaluatorCommand: [String], bind: String?, server: EvaluatorServerOptions,
                extraEvaluatorArguments: [String] = []) {
        self.localEvaluators = localEvaluators; self.evaluatorCommand = evaluatorCommand; self.bind = bind
        self.server = server; self.extraEvaluatorArguments = extraEvaluatorArguments
    }

    /// `~/.cache/brickyard/venv/bin/brickyard-evaluator` (what scripts/setup-python installs).
    public static var defaultEvaluatorPath: String {
        (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.cache/brickyard/venv/bin/brickyard-evaluator"
    }
}

/// Everything one evaluator-backed job needs: the server, the local evaluator processes, a private endpoint.
final class EvaluatorSession {
    let server: EvaluatorServer
    private let pool: LocalWorkerPool?
    private let directory: String?

    init(runtime: EvaluatorRuntimeOptions, jobID: String, baseModel: String, examples: [Wire.Example],
         adapters: [Wire.AdapterRef], logger: Logger, stop: StopSignal) throws {
        var serverOptions = runtime.server
        var directory: String?
        if let bind = runtime.bind {
            serverOptions.bind = bind
        } else {
            let path = NSTemporaryDirectory() + "brickyard-adapt-\(getpid())-\(UUID().uuidString.prefix(8))"
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw CoordinatorError(.io, "\(path): cannot create the private endpoint directory: \(error.localizedDescription)")
            }
            directory = path
            serverOptions.bind = "ipc://\(path)/coordinator.sock"
        }
        self.directory = directory
        server = EvaluatorServer(options: serverOptions, jobID: jobID, baseModelPath: baseModel, examples: examples,
                                 adapters: adapters, logger: logger, stop: stop)
        let endpoint = try server.start()
        if runtime.localEvaluators > 0 {
            guard let program = runtime.evaluatorCommand.first, FileManager.default.isExecutableFile(atPath: program) else {
                server.close(reason: "no evaluator")
                throw AdaptError("evaluator \(runtime.evaluatorCommand.first ?? "(none)") is not an executable file; run scripts/setup-python, or pass --evaluator-command / set BRICKYARD_EVALUATOR")
            }
            let pool = LocalWorkerPool(configuration: .evaluators(command: runtime.evaluatorCommand, endpoint: endpoint,
                                                                  count: runtime.localEvaluators,
                                                                  extraArguments: runtime.extraEvaluatorArguments), logger: logger)
            try pool.start()
            self.pool = pool
            let server = self.server
            server.onTick = { [pool, server] in
                pool.superviseTick()
                if pool.isExhausted && server.connectedEvaluators == 0 {
                    throw AdaptError("local evaluators keep exiting (last status \(pool.lastExitStatus.map(String.init) ?? "?"))"
                        + (server.lastRejection.map { "; the coordinator refused them: \($0)" } ?? "; see their messages above"))
                }
            }
            server.onEvaluatorLost = { [pool] in pool.replaceHung(workerID: $0) }
        } else {
            pool = nil
        }
    }

    func close(reason: String) {
        server.close(reason: reason)
        pool?.stopAll()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// What a finished adapt job reports to the CLI.
public struct AdaptJobOutcome: Sendable {
    public var report: AdaptReport
    public var requestsAnswered: Int
    public var retries: Int
    public var evaluatorSeconds: Double
    public var wallSeconds: Double
}

/// `brickyard adapt`: loads the job, checks the base model and the pool against it, serves evaluators, runs the
/// adaptive search with a checkpoint after every step, and writes the learned merge.
public enum AdaptCoordinator {
    public static func run(job: AdaptJob, outputDirectory: String, overwrite: Bool, checkpointDirectory: String?,
                           runtime: EvaluatorRuntimeOptions, logger: Logger, stop: StopSignal,
                           progress: @escaping (AdaptProgress) -> Void) throws -> AdaptJobOutcome {
        let started = Date()
        try OutputAssembler.checkDestination(outputDirectory, overwrite: overwrite)
        let (train, validation) = try TaskData.split(job.data, seed: job.pool.seed)
        let pool = try loadPool(job.pool)
        try BaseModelCheck.adaptersFit(pool, baseModel: job.baseModel)
        let refs = try pool.map { try adapterRef($0.path) }
        var similarity: (() throws -> [Double])?
        if job.adapt.select.by == .similarity, let target = job.adapt.select.target {
            similarity = { try AdapterSimilarity.cosines(pool: pool, target: LoadedAdapter(try PeftAdapter.load(path: target))) }
        }
        let fingerprint = try Self.fingerprint(job: job, refs: refs, train: train, validation: validation)
        let checkpointPath = checkpointDirectory ?? (URL(fileURLWithPath: outputDirectory).standardizedFileURL.path + ".adapt-checkpoint")
        let checkpoint = try AdaptCheckpoint(directory: checkpointPath)
        if try checkpoint.load(fingerprint: fingerprint) != nil {
            logger.notice("resuming from checkpoint", metadata: ["checkpoint": "\(checkpointPath)"])
        }
        let examples = (train + validation).enumerated().map { index, example in
            Wire.Example(id: UInt32(index), prompt: example.prompt, completion: example.completion, messagesJSON: example.messagesJSON)
        }
        let session = try EvaluatorSession(runtime: runtime, jobID: String(fingerprint.prefix(16)), baseModel: job.baseModel,
                                           examples: examples, adapters: refs, logger: logger, stop: stop)
        let outcome: AdaptOutcome
        do {
            let run = AdaptRun(job: job, pool: pool, train: train, validation: validation, backend: session.server,
                               checkpoint: checkpoint, fingerprint: fingerprint, similarity: similarity, progress: progress)
            outcome = try run.run()
        } catch let error as CoordinatorError where error.code == .interrupted {
            session.close(reason: "coordinator stopping")
            throw CoordinatorError(.interrupted, "adapt stopped; finished steps are checkpointed in \(checkpointPath): rerun the same command to resume")
        } catch {
            session.close(reason: "job failed")
            throw error
        }
        session.close(reason: "job done")
        let wall = Date().timeIntervalSince(started)
        var report = AdaptReport(job: job, pool: pool, train: train.count, validation: validation.count, outcome: outcome, seconds: wall)
        report.runtime?.requests = session.server.requestsAnswered
        report.runtime?.retries = session.server.retries
        report.runtime?.evaluatorSeconds = session.server.evaluatorSeconds
        report.runtime?.evaluators = runtime.localEvaluators
        try AdaptOutput.write(job: job, pool: pool, outcome: outcome, report: report, to: outputDirectory, overwrite: overwrite)
        checkpoint.remove()
        return AdaptJobOutcome(report: report, requestsAnswered: session.server.requestsAnswered, retries: session.server.retries,
                               evaluatorSeconds: session.server.evaluatorSeconds, wallSeconds: wall)
    }

    /// The pool's PEFT directories, opened (headers only). Evaluators load PEFT directories, so bare files are refused.
    static func loadPool(_ spec: JobSpec) throws -> [LoadedAdapter] {
        let file = spec.sourcePath ?? "job"
        return try spec.adapters.enumerated().map { index, entry in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: entry.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw JobFileError(file: file, key: "adapters[\(index)]", "\(entry.path): adapt needs PEFT adapter directories (adapter_config.json + adapter_model.safetensors)")
            }
            return LoadedAdapter(try PeftAdapter.load(path: entry.path))
        }
    }

    /// SHA-256 of adapter_model.safetensors then adapter_config.json: the evaluators' cache key.
    static func adapterRef(_ directory: String) throws -> Wire.AdapterRef {
        var hash = SHA256()
        for name in ["adapter_model.safetensors", "adapter_config.json"] {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw AdaptError("\(directory): cannot read \(name)")
            }
            hash.update([UInt8](data))
        }
        return Wire.AdapterRef(path: directory, contentHash: SHA256.hex(hash.finalize()))
    }

    /// What makes two runs the same job: the adapt section, the seed, the base model (config + weight sizes), the
    /// adapters' content, the examples and the output dtype.
    static func fingerprint(job: AdaptJob, refs: [Wire.AdapterRef], train: [TaskExample], validation: [TaskExample]) throws -> String {
        var hash = SHA256()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        hash.update(Array(try encoder.encode(job.adapt)))
        hash.update("seed \(job.pool.seed) dtype \(job.pool.outputDType)\n")
        hash.update("base \(job.baseModel)\n")
        if let config = FileManager.default.contents(atPath: job.baseModel + "/config.json") { hash.update([UInt8](config)) }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: job.baseModel)) ?? []).sorted()
        for name in names where name.hasSuffix(".safetensors") {
            let size = (try? FileManager.default.attributesOfItem(atPath: job.baseModel + "/" + name)[.size] as? Int) ?? -1
            hash.update("\(name) \(size ?? -1)\n")
        }
        for ref in refs { hash.update("adapter \(ref.path) \(ref.contentHash)\n") }
        for example in train + validation {
            hash.update("example \(example.prompt.utf8.count):\(example.prompt)\(example.completion.utf8.count):\(example.completion)\(example.messagesJSON.utf8.count):\(example.messagesJSON)\n")
        }
        hash.update("validation \(validation.count)\n")
        return SHA256.hex(hash.finalize())
    }
}
