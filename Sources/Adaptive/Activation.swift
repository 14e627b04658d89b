import Foundation

/// The map from raw parameters θ to effective coefficients λ, applied per group of adapters (one row of the
/// coefficient table), with its vector-Jacobian product for the chain rule.
public enum Activation: String, Sendable, Codable, CaseIterable {
    /// max(x, 0.01·x): the Recycling study's choice (λ = 0 at θ = 0 is the base model).
    case leakyReLU = "leaky_relu"
    /// Softmax across the adapters of a row: convex combination.
    case softmax
    /// λ = θ.
    case linear

    static let leakySlope = 0.01

    /// λ for one row of θ.
    public func apply(_ row: [Double]) -> [Double] {
        switch self {
        case .linear: return row
        case .leakyReLU: return row.map { $0 >= 0 ? $0 : Self.leakySlope * $0 }
        case .softmax:
            guard let top = row.max() else { return [] }
            let exps = row.map { exp($0 - top) }
            let sum = exps.reduce(0, +)
            return exps.map { $0 / sum }
        }
    }

    /// dL/dθ for one row, given θ and dL/dλ (the chain rule through `apply`).
    public func backward(_ row: [Double], gradient: [Double]) -> [Double] {
        switch self {
        case .linear: return gradient
        case .leakyReLU: return zip(row, gradient).map { $0 >= 0 ? $1 : Self.leakySlope * $1 }
        case .softmax:
            let lambda = apply(row)
            let dot = zip(lambda, gradient).reduce(0) { $0 + $1.0 * $1.1 }
            return zip(lambda, gradient).map { $0 * ($1 - dot) }
        }
    }
}
