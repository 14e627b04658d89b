/// What a run asks of the evaluators, independent of the wire: the coordinator maps these onto EvalRequests.
public enum EvalMode: String, Sendable, Codable { case loss, lossAndAccuracy, gradient }

/// One evaluation request: `adapters` (indices into the pool) combined on `modules` with the module-major
/// `coefficients` λ (empty: λ = 1), scored on the examples `exampleIDs` (indices into the run's example list).
public struct EvalJob: Sendable, Equatable {
    public var mode: EvalMode
    public var adapters: [Int]
    public var modules: [String]
    public var coefficients: [Double]
    public var exampleIDs: [Int]

    public init(mode: EvalMode, adapters: [Int], modules: [String], coefficients: [Double], exampleIDs: [Int]) {
        self.mode = mode; self.adapters = adapters; self.modules = modules
        self.coefficients = coefficients; self.exampleIDs = exampleIDs
    }
}

/// An evaluator's answer to one `EvalJob`: sums over the job's examples.
public struct EvalAnswer: Sendable, Equatable {
    public var lossSum: Double
    public var tokenCount: Int
    public var exampleLosses: [Double]
    public var exampleTokens: [Int]
    public var exampleCorrect: [Bool]
    /// d lossSum / dλ (gradient jobs).
    public var gradient: [Double]
    public var seconds: Double

    public init(lossSum: Double, tokenCount: Int, exampleLosses: [Double] = [], exampleTokens: [Int] = [],
                exampleCorrect: [Bool] = [], gradient: [Double] = [], seconds: Double = 0) {
        self.lossSum = lossSum; self.tokenCount = tokenCount; self.exampleLosses = exampleLosses
        self.exampleTokens = exampleTokens; self.exampleCorrect = exampleCorrect; self.gradient = gradient
        self.seconds = seconds
    }
}

/// Whoever answers `EvalJob`s: the coordinator's evaluator server, or a model in tests. Answers come back in job
/// order whatever process computed them.
public protocol EvaluationBackend: AnyObject {
    func evaluate(_ jobs: [EvalJob]) throws -> [EvalAnswer]
}

/// Loss, perplexity and accuracy of one model variant on a set of examples.
public struct DatasetScore: Sendable, Codable, Equatable {
    /// Token-weighted mean NLL of the completion tokens.
    public var loss: Double
    public var perplexity: Double
    /// Exact-match accuracy (nil when not measured).
    public var accuracy: Double?
    public var tokens: Int
    public var examples: Int

    public init(loss: Double, perplexity: Double, accuracy: Double?, tokens: Int, examples: Int) {
        self.loss = loss; self.perplexity = perplexity; self.accuracy = accuracy; self.tokens = tokens; self.examples = examples
    }
}

/// Fixed-order reduction of answers: sums in job order, so the result has the same bits whatever the number of
/// evaluators or the order in which their answers arrived.
public enum AnswerReduction {
    public struct Total: Sendable, Equatable {
        public var lossSum: Double
        public var tokenCount: Int
        public var gradient: [Double]
        public var correct: Int
        public var examples: Int
        public var measuredAccuracy: Bool
    }

    public static func reduce(_ answers: [EvalAnswer], gradientCount: Int = 0) -> Total {
        var total = Total(lossSum: 0, tokenCount: 0, gradient: [Double](repeating: 0, count: gradientCount), correct: 0,
                          examples: 0, measuredAccuracy: !answers.isEmpty)
        for answer in answers {
            total.lossSum += answer.lossSum
            total.tokenCount += answer.tokenCount
            for index in 0..<min(gradientCount, answer.gradient.count) { total.gradient[index] += answer.gradient[index] }
            total.correct += answer.exampleCorrect.count { $0 }
            total.examples += answer.exampleLosses.count
            if answer.exampleCorrect.count != answer.exampleLosses.count { total.measuredAccuracy = false }
        }
        return total
    }

    public static func score(_ total: Total) -> DatasetScore {
        let loss = total.tokenCount > 0 ? total.lossSum / Double(total.tokenCount) : .nan
        return DatasetScore(loss: loss, perplexity: loss.isFinite ? Foundation.exp(loss) : .nan,
                            accuracy: total.measuredAccuracy && total.examples > 0 ? Double(total.correct) / Double(total.examples) : nil,
                            tokens: total.tokenCount, examples: total.examples)
    }

    /// Contiguous shards of at most `size` examples, in order.
    public static func shards(_ ids: [Int], size: Int) -> [[Int]] {
        stride(from: 0, to: ids.count, by: max(1, size)).map { Array(ids[$0..<min(ids.count, $0 + max(1, size))]) }
    }
}

import Foundation
