import Foundation
import MergeEngine

/// Progress of a run, for the terminal line and logs.
public struct AdaptProgress: Sendable {
    public var phase: String
    public var step: Int
    public var totalSteps: Int
    public var trainLoss: Double?
    public var validationLoss: Double?
    public var elapsedSeconds: Double
}

/// What a finished run learned and measured (the report and the output are built from it).
public struct AdaptOutcome: Sendable {
    public var state: AdaptState
    /// Pool indices of the adapters in the learned merge (ascending).
    public var selected: [Int]
    public var layout: CoefficientLayout
    /// Final effective coefficients λ (module-major over `layout`).
    public var coefficients: [Double]
    public var theta: [Double]
    /// Validation scores: base, uniform merge of the selection (and of the pool), learned merge.
    public var scores: [String: DatasetScore]
}

/// One adaptive merge, independent of the transport: select adapters, learn coefficients with the configured
/// optimiser against an `EvaluationBackend`, keep the best point, checkpoint every step, score the baselines and
/// the result. Example ids: training examples first, then validation examples.
public final class AdaptRun {
    public let job: AdaptJob
    /// The pool's adapters (path and modules), in job order.
    public let pool: [LoadedAdapter]
    public let train: [TaskExample]
    public let validation: [TaskExample]
    private let backend: EvaluationBackend
    private let checkpoint: AdaptCheckpoint?
    private let fingerprint: String
    /// Similarity scores of pool adapters against `select.target` (only for `by: similarity`).
    private let similarity: (() throws -> [Double])?
    private let progress: (AdaptProgress) -> Void
    private let started = Date()

    public init(job: AdaptJob, pool: [LoadedAdapter], train: [TaskExample], validation: [TaskExample],
                backend: EvaluationBackend, checkpoint: AdaptCheckpoint?, fingerprint: String,
                similarity: (() throws -> [Double])? = nil, progress: @escaping (AdaptProgress) -> Void = { _ in }) {
        self.job = job; self.pool = pool; self.train = train; self.validation = validation
        self.backend = backend; self.checkpoint = checkpoint; self.fingerprint = fingerprint
        self.similarity = similarity; self.progress = progress
    }

    private var spec: AdaptSpec { job.adapt }
    private var trainIDs: [Int] { Array(0..<train.count) }
    private var validationIDs: [Int] { Array(train.count..<(train.count + validation.count)) }

    /// Runs (or resumes) the whole search.
    public func run() throws -> AdaptOutcome {
        var state = try checkpoint?.load(fingerprint: fingerprint) ?? AdaptState(fingerprint: fingerprint)
        if state.selection == nil {
            state.selection = try select()
            // Nothing was computed for `by: none`: the first checkpoint is written after the baselines.
            if spec.select.by != .none { try save(state) }
        }
        let selected = state.selection?.selected ?? []
        let layout = CoefficientLayout(granularity: spec.coefficients, modules: modules(of: selected), adapterCount: selected.count)
        if state.baselines.isEmpty {
            report("baselines", step: 0)
            state.baselines = try baselines(selected: selected, layout: layout)
            try save(state)
        }
        if state.theta.isEmpty {
            state.theta = [Double](repeating: spec.initialValue, count: layout.parameterCount)
            try save(state)
        }
        if !state.trainingDone {
            if spec.optimizer.isGradientFree {
                try searchGradientFree(&state, selected: selected, layout: layout)
            } else {
                try trainAdamW(&state, selected: selected, layout: layout)
            }
            state.trainingDone = true
            try save(state)
        }
        let theta = state.best?.theta ?? state.theta
        let lambda = layout.coefficients(theta, activation: spec.activation)
        var scores = state.baselines
        if scores["learned"] == nil {
            report("final evaluation", step: state.step)
            scores["learned"] = try score(selected, layout.modules, lambda, validationIDs, accuracy: true)
            state.baselines = scores
            try save(state)
        }
        return AdaptOutcome(state: state, selected: selected, layout: layout, coefficients: lambda, theta: theta, scores: scores)
    }

    // MARK: selection

    /// Output modules of a set of pool adapters: the union of their module names, bytewise sorted (the planner's order).
    public func modules(of adapters: [Int]) -> [String] {
        Set(adapters.flatMap { pool[$0].modules.map(\.name) }).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    private func select() throws -> SelectionOutcome {
        let all = Array(pool.indices)
        let keep = min(spec.select.topK ?? pool.count, pool.count)
        var scores: [Double?] = Array(repeating: nil, count: pool.count)
        let order: [Int]
        switch spec.select.by {
        case .none:
            return SelectionOutcome(criterion: .none, scores: scores, selected: all)
        case .loss, .accuracy:
            report("selection", step: 0)
            let accuracy = spec.select.by == .accuracy
            var jobs: [EvalJob] = []
            var ranges: [Range<Int>] = []
            for adapter in all {
                let shards = AnswerReduction.shards(trainIDs, size: spec.examplesPerRequest).map {
                    EvalJob(mode: accuracy ? .lossAndAccuracy : .loss, adapters: [adapter], modules: modules(of: [adapter]),
                            coefficients: [], exampleIDs: $0)
                }
                ranges.append(jobs.count..<(jobs.count + shards.count))
                jobs += shards
            }
            let answers = try backend.evaluate(jobs)
            let results = ranges.map { AnswerReduction.score(AnswerReduction.reduce(Array(answers[$0]))) }
            if accuracy {
                scores = results.map { $0.accuracy ?? 0 }
                order = all.sorted { a, b in
                    let (x, y) = (results[a].accuracy ?? 0, results[b].accuracy ?? 0)
                    return x != y ? x > y : (results[a].loss != results[b].loss ? results[a].loss < results[b].loss : a < b)
                }
            } else {
                scores = results.map(\.loss)
                order = all.sorted { results[$0].loss != results[$1].loss ? results[$0].loss < results[$1].loss : $0 < $1 }
            }
        case .similarity:
            guard let similarity else { throw AdaptError("adapt.select.target: similarity selection needs a target adapter") }
            let values = try similarity()
            scores = values
            order = all.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        }
        return SelectionOutcome(criterion: spec.select.by, scores: scores, selected: order.prefix(keep).sorted())
    }

    // MARK: scoring

    /// Token-weighted loss (and accuracy) of one model variant on `ids`.
    public func score(_ adapters: [Int], _ modules: [String], _ coefficients: [Double], _ ids: [Int], accuracy: Bool) throws -> DatasetScore {
        let jobs = AnswerReduction.shards(ids, size: spec.examplesPerRequest).map {
            EvalJob(mode: accuracy ? .lossAndAccuracy : .loss, adapters: adapters, modules: modules, coefficients: coefficients, exampleIDs: $0)
        }
        return AnswerReduction.score(AnswerReduction.reduce(try backend.evaluate(jobs)))
    }

    private func baselines(selected: [Int], layout: CoefficientLayout) throws -> [String: DatasetScore] {
        var result: [String: DatasetScore] = [:]
        result["base"] = try score([], [], [], validationIDs, accuracy: true)
        let uniform = [Double](repeating: 1 / Double(max(1, selected.count)), count: layout.coefficientCount)
        result["uniform_selection"] = try score(selected, layout.modules, uniform, validationIDs, accuracy: true)
        if selected.count != pool.count {
            let all = Array(pool.indices)
            let modules = modules(of: all)
            result["uniform_pool"] = try score(all, modules, [Double](repeating: 1 / Double(pool.count), count: modules.count * pool.count),
                                               validationIDs, accuracy: true)
        }
        return result
    }

    // MARK: AdamW

    /// The training example ids of step `step`: consecutive batches over seeded per-epoch permutations.
    public func batch(step: Int) -> [Int] {
        let size = min(spec.batchSize ?? train.count, train.count)
        var ids: [Int] = []
        var position = step * size
        while ids.count < size {
            let epoch = position / train.count
            let order = SeededShuffle.permutation(count: train.count, seed: job.pool.seed, stream: 0xBA7C_0000 &+ UInt64(epoch))
            ids.append(order[position % train.count])
            position += 1
        }
        return ids
    }

    /// Objective and dL/dθ at θ on `ids`: token-weighted mean loss + l1·mean|λ|; gradients reduced in job order.
    public func objectiveAndGradient(theta: [Double], ids: [Int], selected: [Int], layout: CoefficientLayout) throws -> (Double, [Double]) {
        let lambda = layout.coefficients(theta, activation: spec.activation)
        let jobs = AnswerReduction.shards(ids, size: spec.examplesPerRequest).map {
            EvalJob(mode: .gradient, adapters: selected, modules: layout.modules, coefficients: lambda, exampleIDs: $0)
        }
        let answers = try backend.evaluate(jobs)
        if let bad = answers.firstIndex(where: { $0.gradient.count != lambda.count }) {
            throw AdaptError("evaluator answered a gradient request with \(answers[bad].gradient.count) values; expected \(lambda.count)")
        }
        let total = AnswerReduction.reduce(answers, gradientCount: lambda.count)
        guard total.tokenCount > 0 else { throw AdaptError("the training batch has no completion tokens") }
        let tokens = Double(total.tokenCount)
        var objective = total.lossSum / tokens
        var gradient = total.gradient.map { $0 / tokens }
        if spec.l1 > 0, !lambda.isEmpty {
            let count = Double(lambda.count)
            objective += spec.l1 * lambda.reduce(0) { $0 + abs($1) } / count
            for index in gradient.indices { gradient[index] += spec.l1 * (lambda[index] > 0 ? 1 : lambda[index] < 0 ? -1 : 0) / count }
        }
        return (objective, layout.parameterGradient(theta, coefficientGradient: gradient, activation: spec.activation))
    }

    private func validationLoss(theta: [Double], selected: [Int], layout: CoefficientLayout) throws -> Double {
        try score(selected, layout.modules, layout.coefficients(theta, activation: spec.activation), validationIDs, accuracy: false).loss
    }

    private func trainAdamW(_ state: inout AdaptState, selected: [Int], layout: CoefficientLayout) throws {
        if state.adamw == nil {
            state.adamw = AdamW(parameterCount: layout.parameterCount, learningRate: spec.learningRate, totalSteps: spec.steps,
                                weightDecay: spec.weightDecay)
        }
        if state.best == nil {
            let loss = try validationLoss(theta: state.theta, selected: selected, layout: layout)
            state.best = BestPoint(theta: state.theta, value: loss, step: 0)
            state.history.append(StepRecord(step: 0, trainLoss: .nan, validationLoss: loss, learningRate: nil, evaluations: 0, seconds: 0))
            try save(state)
        }
        while state.step < spec.steps {
            let stepStart = Date()
            let ids = batch(step: state.step)
            let (objective, gradient) = try objectiveAndGradient(theta: state.theta, ids: ids, selected: selected, layout: layout)
            var optimizer = state.adamw ?? AdamW(parameterCount: 0, learningRate: 0, totalSteps: 1)
            let rate = optimizer.update(&state.theta, gradient: gradient)
            state.adamw = optimizer
            state.step += 1
            state.evaluations += 1
            var validationLoss: Double?
            if state.step % max(1, spec.validateEvery) == 0 || state.step == spec.steps {
                let loss = try self.validationLoss(theta: state.theta, selected: selected, layout: layout)
                validationLoss = loss
                if let best = state.best, loss < best.value || best.value.isNaN {
                    state.best = BestPoint(theta: state.theta, value: loss, step: state.step)
                }
            }
            state.history.append(StepRecord(step: state.step, trainLoss: objective, validationLoss: validationLoss,
                                            learningRate: rate, evaluations: state.evaluations,
                                            seconds: Date().timeIntervalSince(stepStart)))
            try save(state)
            report("adamw", step: state.step, train: objective, validation: validationLoss ?? state.history.last(where: { $0.validationLoss != nil })?.validationLoss)
        }
    }

    // MARK: gradient-free

    /// Training objective of a weight vector for the gradient-free route (clipped to the bounds): loss on every
    /// training example + l1·mean|λ|.
    private func objectives(_ candidates: [[Double]], selected: [Int], layout: CoefficientLayout) throws -> [Double] {
        let bound = spec.bound
        var jobs: [EvalJob] = []
        var ranges: [Range<Int>] = []
        var lambdas: [[Double]] = []
        for candidate in candidates {
            let clipped = candidate.map { min(bound, max(-bound, $0)) }
            let lambda = layout.coefficients(clipped, activation: spec.activation)
            lambdas.append(lambda)
            let shards = AnswerReduction.shards(trainIDs, size: spec.examplesPerRequest).map {
                EvalJob(mode: .loss, adapters: selected, modules: layout.modules, coefficients: lambda, exampleIDs: $0)
            }
            ranges.append(jobs.count..<(jobs.count + shards.count))
            jobs += shards
        }
        let answers = try backend.evaluate(jobs)
        return zip(ranges, lambdas).map { range, lambda in
            let loss = AnswerReduction.score(AnswerReduction.reduce(Array(answers[range]))).loss
            let penalty = lambda.isEmpty ? 0 : spec.l1 * lambda.reduce(0) { $0 + abs($1) } / Double(lambda.count)
            return loss.isNaN ? .infinity : loss + penalty
        }
    }

    private func searchGradientFree(_ state: inout AdaptState, selected: [Int], layout: CoefficientLayout) throws {
        let seed = job.pool.seed
        if state.cmaes == nil && state.nelderMead == nil {
            switch spec.optimizer {
            case .cmaES: state.cmaes = CMAES(initial: state.theta, sigma: spec.bound / 3, seed: seed ^ 0xC0FFEE)
            default: state.nelderMead = NelderMead(initial: state.theta, step: spec.bound / 3)
            }
        }
        while state.evaluations < spec.steps {
            let stepStart = Date()
            let candidates = state.cmaes?.ask() ?? state.nelderMead?.ask() ?? []
            guard !candidates.isEmpty else { break }
            let values = try objectives(candidates, selected: selected, layout: layout)
            if var cma = state.cmaes { cma.tell(values); state.cmaes = cma }
            if var simplex = state.nelderMead { simplex.tell(values); state.nelderMead = simplex }
            state.step += 1
            state.evaluations += candidates.count
            for (candidate, value) in zip(candidates, values) where value < (state.best?.value ?? .infinity) {
                state.best = BestPoint(theta: candidate.map { min(spec.bound, max(-spec.bound, $0)) }, value: value, step: state.step)
            }
            state.theta = state.best?.theta ?? state.theta
            var validationLoss: Double?
            if state.step % max(1, spec.validateEvery) == 0 || state.evaluations >= spec.steps {
                validationLoss = try self.validationLoss(theta: state.theta, selected: selected, layout: layout)
            }
            state.history.append(StepRecord(step: state.step, trainLoss: values.min() ?? .nan, validationLoss: validationLoss,
                                            learningRate: nil, evaluations: state.evaluations,
                                            seconds: Date().timeIntervalSince(stepStart)))
            try save(state)
            report(spec.optimizer.rawValue, step: min(state.evaluations, spec.steps), train: state.best?.value, validation: validationLoss)
        }
    }

    // MARK: helpers

    private func save(_ state: AdaptState) throws { try checkpoint?.save(state) }

    private func report(_ phase: String, step: Int, train: Double? = nil, validation: Double? = nil) {
        progress(AdaptProgress(phase: phase, step: step, totalSteps: spec.steps, trainLoss: train, validationLoss: validation,
                               elapsedSeconds: Date().timeIntervalSince(started)))
    }
}
