import Foundation

/// AdamW (decoupled weight decay, PyTorch's `torch.optim.AdamW` update) with a linear warmup over the first 10%
/// of the steps and a cosine decay to 0 after it. The whole state is plain numbers (Codable), so a checkpointed
/// run resumes bit for bit.
public struct AdamW: Sendable, Codable, Equatable {
    public var learningRate: Double
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var epsilon = 1e-8
    public var weightDecay: Double
    public var totalSteps: Int
    /// Steps taken so far.
    public private(set) var step = 0
    public private(set) var firstMoment: [Double]
    public private(set) var secondMoment: [Double]

    public init(parameterCount: Int, learningRate: Double, totalSteps: Int, weightDecay: Double = 0) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.totalSteps = max(1, totalSteps)
        firstMoment = [Double](repeating: 0, count: parameterCount)
        secondMoment = [Double](repeating: 0, count: parameterCount)
    }

    /// Warmup steps: 10% of the run (at least one).
    public var warmupSteps: Int { max(1, Int((0.1 * Double(totalSteps)).rounded())) }

    /// The learning rate of step `index` (0-based): linear warmup to `learningRate`, then cosine to 0.
    public func scheduledRate(at index: Int) -> Double {
        let warmup = warmupSteps
        if index < warmup { return learningRate * Double(index + 1) / Double(warmup) }
        let span = max(1, totalSteps - warmup)
        let progress = min(1, Double(index - warmup) / Double(span))
        return learningRate * 0.5 * (1 + cos(Double.pi * progress))
    }

    /// One update of `parameters` with `gradient`; returns the rate used.
    @discardableResult
    public mutating func update(_ parameters: inout [Double], gradient: [Double]) -> Double {
        precondition(parameters.count == firstMoment.count && gradient.count == firstMoment.count, "AdamW: size mismatch")
        let rate = scheduledRate(at: step)
        step += 1
        let correction1 = 1 - pow(beta1, Double(step))
        let correction2 = 1 - pow(beta2, Double(step))
        for index in parameters.indices {
            parameters[index] *= 1 - rate * weightDecay
            firstMoment[index] = beta1 * firstMoment[index] + (1 - beta1) * gradient[index]
            secondMoment[index] = beta2 * secondMoment[index] + (1 - beta2) * gradient[index] * gradient[index]
            let denominator = (secondMoment[index] / correction2).squareRoot() + epsilon
            parameters[index] -= rate / correction1 * firstMoment[index] / denominator
        }
        return rate
    }
}
