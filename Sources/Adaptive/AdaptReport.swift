import AdapterIO
import Foundation
import MergeEngine

/// `adapt-report.json`: what was selected and why, the loss curve, the final coefficients and the scores of the
/// base, the uniform merges and the learned merge. Everything but `runtime` is a pure function of the job.
public struct AdaptReport: Sendable, Codable {
    public struct PoolEntry: Sendable, Codable {
        public var path: String
        public var score: Double?
        public var selected: Bool
    }
    public struct Coefficients: Sendable, Codable {
        /// Selected adapters (columns of `lambda`).
        public var adapters: [String]
        /// Module names (rows of `lambda`).
        public var modules: [String]
        /// λ[m][i], the effective coefficient of adapter i on module m (the PEFT scaling s_i is applied on top).
        public var lambda: [[Double]]
        /// The raw parameters θ (one row per group of the layout).
        public var theta: [[Double]]
        public var granularity: String
        public var activation: String
        /// Column labels of the plot (`layer 0`, …).
        public var layers: [String]
        /// Mean λ per adapter (row) and layer (column): what coefficients.png shows.
        public var perAdapterLayer: [[Double]]
    }
    public struct Runtime: Sendable, Codable {
        public var seconds: Double
        /// Optimiser steps (AdamW) or loss evaluations (gradient-free) done.
        public var evaluations: Int
        public var stepSeconds: [Double]
        /// Evaluator requests answered and retried, and the compute seconds evaluators reported (filled by the runtime).
        public var requests: Int?
        public var retries: Int?
        public var evaluatorSeconds: Double?
        public var evaluators: Int?
    }

    public var tool = "brickyard \(BrickyardVersion.string)"
    public var baseModel: String
    public var trainExamples: Int
    public var validationExamples: Int
    public var spec: AdaptSpec
    public var selection: String
    public var pool: [PoolEntry]
    public var history: [StepRecord]
    public var bestStep: Int?
    public var bestValue: Double?
    public var coefficients: Coefficients
    /// Validation scores by variant: base, uniform_selection, uniform_pool (when selecting), learned.
    public var scores: [String: DatasetScore]
    public var runtime: Runtime?

    public init(job: AdaptJob, pool: [LoadedAdapter], train: Int, validation: Int, outcome: AdaptOutcome, seconds: Double) {
        baseModel = job.baseModel
        trainExamples = train
        validationExamples = validation
        spec = job.adapt
        selection = job.adapt.select.by.rawValue
        let scores = outcome.state.selection?.scores ?? []
        self.pool = pool.enumerated().map { index, adapter in
            PoolEntry(path: adapter.path, score: index < scores.count ? scores[index] : nil, selected: outcome.selected.contains(index))
        }
        history = outcome.state.history
        bestStep = outcome.state.best?.step
        bestValue = outcome.state.best?.value
        let layout = outcome.layout
        let n = layout.adapterCount
        let lambda = layout.modules.indices.map { m in Array(outcome.coefficients[(m * n)..<((m + 1) * n)]) }
        let layerIndices = layout.modules.map { CoefficientLayout.layerIndex($0) ?? -1 }
        let layers = Array(Set(layerIndices)).sorted()
        let perAdapterLayer = (0..<n).map { adapter in
            layers.map { layer -> Double in
                let rows = layerIndices.indices.filter { layerIndices[$0] == layer }
                return rows.reduce(0) { $0 + lambda[$1][adapter] } / Double(max(1, rows.count))
            }
        }
        coefficients = Coefficients(
            adapters: outcome.selected.map { pool[$0].path }, modules: layout.modules, lambda: lambda,
            theta: (0..<layout.groupCount).map { g in Array(outcome.theta[(g * n)..<((g + 1) * n)]) },
            granularity: layout.granularity.rawValue, activation: job.adapt.activation.rawValue,
            layers: layers.map { $0 < 0 ? "no layer" : "layer \($0)" }, perAdapterLayer: perAdapterLayer)
        self.scores = outcome.scores
        runtime = Runtime(seconds: seconds, evaluations: outcome.state.evaluations, stepSeconds: outcome.state.history.map(\.seconds))
    }

    public func json(includeRuntime: Bool = true) throws -> [UInt8] {
        var copy = self
        if !includeRuntime { copy.runtime = nil; copy.history = history.map { var r = $0; r.seconds = 0; return r } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return Array(try encoder.encode(copy)) + [0x0A]
    }
}

/// Writes the learned merge: the selected adapters through the merge engine with c_i = λ[m, i] · s_i per module
/// (CAT exactly, or compressed by svd/lego to `output.rank`), plus adapt-report.json, coefficients.json and
/// coefficients.png, all in a staging directory renamed into place at the end (nothing is left on failure).
public enum AdaptOutput {
    public static let reportFileName = "adapt-report.json"
    public static let coefficientsFileName = "coefficients.json"
    public static let plotFileName = "coefficients.png"

    /// The merge plan of the learned coefficients.
    public static func plan(job: AdaptJob, pool: [LoadedAdapter], outcome: AdaptOutcome) throws -> MergePlan {
        let selected = outcome.selected
        var spec = JobSpec(method: job.adapt.output.method, rank: job.adapt.output.rank, normalize: false, seed: job.pool.seed,
                           outputDType: job.pool.outputDType,
                           adapters: selected.map { AdapterEntry(path: pool[$0].path, weight: 1) })
        spec.sourcePath = job.pool.sourcePath
        var next = 0
        var plan = try Planner.plan(job: spec) { _ in
            defer { next += 1 }
            return pool[selected[next]]
        }
        let n = outcome.layout.adapterCount
        let row = Dictionary(uniqueKeysWithValues: outcome.layout.modules.enumerated().map { ($1, $0) })
        for (m, module) in plan.modules.enumerated() {
            guard let r = row[module.name] else { throw AdaptError("module \(module.name) is missing from the coefficient layout") }
            for (s, source) in module.sources.enumerated() {
                plan.modules[m].sources[s].coefficient = outcome.coefficients[r * n + source.adapterIndex] * source.module.scaling
            }
        }
        return plan
    }

    public static func write(job: AdaptJob, pool: [LoadedAdapter], outcome: AdaptOutcome, report: AdaptReport,
                             to directory: String, overwrite: Bool) throws {
        try OutputAssembler.checkDestination(directory, overwrite: overwrite)
        let destination = URL(fileURLWithPath: directory).standardizedFileURL.path
        let staging = AtomicFile.temporaryPath(for: destination) + ".adapt"
        do {
            let plan = try plan(job: job, pool: pool, outcome: outcome)
            try LocalMerge.run(plan: plan, outputDirectory: staging, overwrite: true)
            try AtomicFile.write(try report.json(), to: staging + "/" + reportFileName)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try AtomicFile.write(Array(try encoder.encode(report.coefficients)) + [0x0A], to: staging + "/" + coefficientsFileName)
            try AtomicFile.write(CoefficientPlot.png(report.coefficients.perAdapterLayer), to: staging + "/" + plotFileName)
            try AtomicFile.syncDirectory(staging)
            if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
            guard rename(staging, destination) == 0 else {
                throw AdaptError("\(destination): cannot rename the finished output into place: \(String(cString: strerror(errno)))")
            }
            try AtomicFile.syncDirectory(containing: destination)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }
}
