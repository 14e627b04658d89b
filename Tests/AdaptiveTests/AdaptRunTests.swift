import AdapterIO
import Foundation
import MergeEngine
import Testing
@testable import Adaptive

/// A stand-in for evaluators: example e has `tokens(e)` completion tokens and loss per token
/// Σ_k (λ_k − t_k)² + 0.1·(e mod 3) for a planted λ* = t (module-major). Adapters missing from a job count as λ = 0.
/// Answers come back in job order; `failAfter` throws after that many calls (a killed coordinator).
private final class QuadraticBackend: EvaluationBackend {
    let target: [Double]
    let poolSize: Int
    var calls = 0
    var failAfter: Int?
    var requests = 0
    init(target: [Double], poolSize: Int) { self.target = target; self.poolSize = poolSize }

    func evaluate(_ jobs: [EvalJob]) throws -> [EvalAnswer] {
        calls += 1
        if let failAfter, calls > failAfter { throw AdaptError("killed") }
        requests += jobs.count
        let modules = target.count / poolSize
        return jobs.map { job in
            // λ over the whole pool (module-major), from the job's adapters.
            var lambda = [Double](repeating: 0, count: target.count)
            for m in 0..<modules {
                for (j, adapter) in job.adapters.enumerated() {
                    lambda[m * poolSize + adapter] = job.coefficients.isEmpty ? 1 : job.coefficients[m * job.adapters.count + j]
                }
            }
            var answer = EvalAnswer(lossSum: 0, tokenCount: 0, gradient: [Double](repeating: 0, count: job.coefficients.count))
            for e in job.exampleIDs {
                let tokens = 2 + e % 3
                var perToken = 0.1 * Double(e % 3)
                for k in lambda.indices { perToken += (lambda[k] - target[k]) * (lambda[k] - target[k]) }
                answer.lossSum += Double(tokens) * perToken
                answer.tokenCount += tokens
                answer.exampleLosses.append(Double(tokens) * perToken)
                answer.exampleTokens.append(tokens)
                if job.mode == .lossAndAccuracy { answer.exampleCorrect.append(perToken < 0.2) }
                if job.mode == .gradient {
                    for m in 0..<modules {
                        for (j, adapter) in job.adapters.enumerated() {
                            let k = m * poolSize + adapter
                            answer.gradient[m * job.adapters.count + j] += Double(tokens) * 2 * (lambda[k] - target[k])
                        }
                    }
                }
            }
            return answer
        }
    }
}

private func fakePool(_ count: Int, modules: [String]) -> [LoadedAdapter] {
    let ref = TensorRef(path: "/dev/null", dtype: .f32, shape: [1, 1], byteOffset: 0, byteCount: 4)
    return (0..<count).map { index in
        LoadedAdapter(path: "/pool/a\(index)", modules: modules.map {
            LoraModuleInfo(name: $0, rank: 1, alpha: 1, scaling: 1, inFeatures: 1, outFeatures: 1, a: ref, b: ref)
        })
    }
}

private func examples(_ count: Int, offset: Int = 0) -> [TaskExample] {
    (0..<count).map { TaskExample(prompt: "p\($0 + offset)", completion: "c") }
}

private func job(_ configure: (inout AdaptSpec) -> Void) -> AdaptJob {
    var spec = AdaptSpec()
    configure(&spec)
    return AdaptJob(pool: JobSpec(method: .cat, seed: 11, adapters: []), baseModel: "/base",
                    data: AdaptDataSpec(train: "/t"), adapt: spec)
}

private let twoModules = ["m.layers.0.q", "m.layers.1.q"]

@Suite("Adaptive run against a model with a known optimum")
struct AdaptRunTests {
    @Test("AdamW per module recovers the planted coefficients")
    func adamwRecovers() throws {
        let target = [0.8, 0.3, 0.5, 0.6]  // 2 modules × 2 adapters
        let backend = QuadraticBackend(target: target, poolSize: 2)
        let run = AdaptRun(job: job { $0.steps = 150; $0.lr(0.1); $0.batchSize = 4 }, pool: fakePool(2, modules: twoModules),
                           train: examples(12), validation: examples(4, offset: 100), backend: backend, checkpoint: nil,
                           fingerprint: "x")
        let outcome = try run.run()
        for (learned, planted) in zip(outcome.coefficients, target) { #expect(abs(learned - planted) < 0.02, "\(outcome.coefficients)") }
        #expect(outcome.scores["learned"]!.loss < outcome.scores["uniform_selection"]!.loss)
        #expect(outcome.scores["base"] != nil)
    }

    @Test("gradient-free searches (per adapter) recover the planted weights", arguments: [OptimizerName.cmaES, .nelderMead])
    func gradientFree(optimizer: OptimizerName) throws {
        let target = [0.9, -0.4, 0.9, -0.4]  // the same weight on both modules
        let backend = QuadraticBackend(target: target, poolSize: 2)
        var spec = AdaptSpec.gradientFreeDefaults(optimizer)
        spec.steps = 120
        spec.l1 = 0
        let adaptJob = AdaptJob(pool: JobSpec(method: .cat, seed: 5, adapters: []), baseModel: "/b", data: AdaptDataSpec(train: "/t"), adapt: spec)
        let outcome = try AdaptRun(job: adaptJob, pool: fakePool(2, modules: twoModules), train: examples(6),
                                   validation: examples(3, offset: 50), backend: backend, checkpoint: nil, fingerprint: "y").run()
        #expect(abs(outcome.theta[0] - 0.9) < 0.05 && abs(outcome.theta[1] + 0.4) < 0.05, "\(outcome.theta)")
        #expect(outcome.state.evaluations >= 120 && outcome.state.evaluations < 140)
    }

    @Test("top-k by loss keeps the adapters the planted optimum uses")
    func selection() throws {
        // Adapters 1 and 3 are the useful ones: λ* = 1 for them, 0 for the rest.
        let target = [0, 1, 0, 1, 0, 0, 1, 0, 1, 0].map(Double.init)  // 2 modules × 5 adapters
        let backend = QuadraticBackend(target: target, poolSize: 5)
        let run = AdaptRun(job: job { $0.select = SelectionSpec(by: .loss, topK: 2); $0.steps = 3 },
                           pool: fakePool(5, modules: twoModules), train: examples(6), validation: examples(2, offset: 9),
                           backend: backend, checkpoint: nil, fingerprint: "z")
        let outcome = try run.run()
        #expect(outcome.selected == [1, 3])
        #expect(outcome.scores["uniform_pool"] != nil)
    }

    @Test("a run killed mid-way resumes from its checkpoint with the same bits as an uninterrupted run",
          arguments: [OptimizerName.adamw, .cmaES, .nelderMead])
    func resume(optimizer: OptimizerName) throws {
        let target = [0.7, 0.2, 0.4, 0.9]
        let make: () -> AdaptJob = {
            var spec = optimizer == .adamw ? AdaptSpec() : AdaptSpec.gradientFreeDefaults(optimizer)
            spec.steps = optimizer == .adamw ? 30 : 60
            spec.validateEvery = 4
            return AdaptJob(pool: JobSpec(method: .cat, seed: 3, adapters: []), baseModel: "/b", data: AdaptDataSpec(train: "/t"), adapt: spec)
        }
        let pool = fakePool(2, modules: twoModules)
        let straight = try AdaptRun(job: make(), pool: pool, train: examples(10), validation: examples(3, offset: 20),
                                    backend: QuadraticBackend(target: target, poolSize: 2), checkpoint: nil, fingerprint: "f").run()
        let directory = NSTemporaryDirectory() + "adapt-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let killed = QuadraticBackend(target: target, poolSize: 2)
        killed.failAfter = 6
        #expect(throws: AdaptError.self) {
            try AdaptRun(job: make(), pool: pool, train: examples(10), validation: examples(3, offset: 20), backend: killed,
                         checkpoint: try AdaptCheckpoint(directory: directory), fingerprint: "f").run()
        }
        let partial = try #require(try AdaptCheckpoint(directory: directory).load(fingerprint: "f"))
        #expect(partial.step > 0 && !partial.trainingDone)
        let resumed = try AdaptRun(job: make(), pool: pool, train: examples(10), validation: examples(3, offset: 20),
                                   backend: QuadraticBackend(target: target, poolSize: 2),
                                   checkpoint: try AdaptCheckpoint(directory: directory), fingerprint: "f").run()
        #expect(resumed.coefficients == straight.coefficients)
        #expect(resumed.theta == straight.theta)
        #expect(resumed.state.history.map(\.trainLoss).description == straight.state.history.map(\.trainLoss).description)
        #expect(throws: AdaptError.self) { try AdaptCheckpoint(directory: directory).load(fingerprint: "other job") }
    }

    @Test("answers are reduced in job order: a sum over shards does not depend on who answered first")
    func reductionOrder() {
        let answers = (0..<7).map { EvalAnswer(lossSum: 0.1 * Double($0) + 1e-17 * Double($0 * $0), tokenCount: $0 + 1,
                                                 gradient: [1e16, 1, -1e16].map { $0 * Double($0 == 1 ? $0 : 1) }) }
        let total = AnswerReduction.reduce(answers, gradientCount: 3)
        var expected = 0.0
        for answer in answers { expected += answer.lossSum }
        #expect(total.lossSum == expected)
        #expect(total.tokenCount == 28)
        #expect(AnswerReduction.shards(Array(0..<10), size: 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    }
}

private extension AdaptSpec {
    mutating func lr(_ value: Double) { learningRate = value }
}
