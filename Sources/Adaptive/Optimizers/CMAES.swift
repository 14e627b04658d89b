import Foundation
import Kernels

/// CMA-ES (Hansen's (μ/μ_w, λ) evolution strategy with rank-one and rank-μ covariance updates, the parameter
/// choices of Hansen's tutorial and `purecma`), in ask/tell form. `ask` is a pure function of the state (the
/// population's normal samples come from a counter-keyed stream of (seed, generation)), so the state that must
/// survive a restart is just numbers: Codable, checkpointed after every generation.
public struct CMAES: Sendable, Codable, Equatable {
    public let dimension: Int
    public let populationSize: Int
    public let seed: UInt64
    public private(set) var mean: [Double]
    public private(set) var sigma: Double
    /// Row-major [n, n].
    public private(set) var covariance: [Double]
    public private(set) var evolutionPath: [Double]
    public private(set) var conjugatePath: [Double]
    public private(set) var generation = 0
    /// Eigen-decomposition of `covariance` (B columns, D = sqrt(eigenvalues)), refreshed after each update.
    private var basis: [Double]
    private var scales: [Double]

    public init(initial: [Double], sigma: Double, seed: UInt64, populationSize: Int? = nil) {
        let n = initial.count
        dimension = n
        self.populationSize = populationSize ?? (4 + Int(3 * log(Double(max(n, 1)))))
        self.seed = seed
        mean = initial
        self.sigma = sigma
        covariance = [Double](repeating: 0, count: n * n)
        for i in 0..<n { covariance[i * n + i] = 1 }
        evolutionPath = [Double](repeating: 0, count: n)
        conjugatePath = [Double](repeating: 0, count: n)
        basis = covariance
        scales = [Double](repeating: 1, count: n)
    }

    // Strategy parameters (functions of n and λ only).
    private var parentCount: Int { populationSize / 2 }
    private var weights: [Double] {
        let mu = parentCount
        let raw = (1...mu).map { log(Double(mu) + 0.5) - log(Double($0)) }
        let sum = raw.reduce(0, +)
        return raw.map { $0 / sum }
    }
    private var effectiveMu: Double { 1 / weights.reduce(0) { $0 + $1 * $1 } }
    private var n: Double { Double(dimension) }
    private var cSigma: Double { (effectiveMu + 2) / (n + effectiveMu + 5) }
    private var dSigma: Double { 1 + 2 * max(0, ((effectiveMu - 1) / (n + 1)).squareRoot() - 1) + cSigma }
    private var cC: Double { (4 + effectiveMu / n) / (n + 4 + 2 * effectiveMu / n) }
    private var c1: Double { 2 / ((n + 1.3) * (n + 1.3) + effectiveMu) }
    private var cMu: Double { min(1 - c1, 2 * (effectiveMu - 2 + 1 / effectiveMu) / ((n + 2) * (n + 2) + effectiveMu)) }
    private var chiN: Double { n.squareRoot() * (1 - 1 / (4 * n) + 1 / (21 * n * n)) }

    /// The standard normal vectors of this generation's population.
    private func normals() -> [[Double]] {
        var generator = DeterministicRandom(seed: CounterRandom.streamKey(seed: seed, stream: UInt64(generation)))
        return (0..<populationSize).map { _ in (0..<dimension).map { _ in generator.nextGaussian() } }
    }

    /// y = B · (D ∘ z).
    private func transform(_ z: [Double]) -> [Double] {
        (0..<dimension).map { i in (0..<dimension).reduce(0) { $0 + basis[i * dimension + $1] * scales[$1] * z[$1] } }
    }

    /// The candidates of this generation (the same every time it is asked).
    public func ask() -> [[Double]] {
        normals().map { z in
            let y = transform(z)
            return (0..<dimension).map { mean[$0] + sigma * y[$0] }
        }
    }

    /// Updates the distribution from the candidates' values (lower is better), in `ask()` order.
    public mutating func tell(_ values: [Double]) {
        let candidates = ask()
        precondition(values.count == candidates.count, "CMAES.tell: \(values.count) values for \(candidates.count) candidates")
        let order = values.indices.sorted { values[$0] < values[$1] || (values[$0] == values[$1] && $0 < $1) }
        let w = weights
        let old = mean
        var newMean = [Double](repeating: 0, count: dimension)
        for (rank, index) in order.prefix(parentCount).enumerated() {
            for j in 0..<dimension { newMean[j] += w[rank] * candidates[index][j] }
        }
        mean = newMean
        let yw = (0..<dimension).map { (newMean[$0] - old[$0]) / sigma }
        // C^{-1/2} y_w = B D^{-1} Bᵀ y_w
        let projected = (0..<dimension).map { k in (0..<dimension).reduce(0) { $0 + basis[$1 * dimension + k] * yw[$1] } / scales[k] }
        let whitened = (0..<dimension).map { i in (0..<dimension).reduce(0) { $0 + basis[i * dimension + $1] * projected[$1] } }
        let muEff = effectiveMu
        let cs = cSigma, cc = cC
        conjugatePath = (0..<dimension).map { (1 - cs) * conjugatePath[$0] + (cs * (2 - cs) * muEff).squareRoot() * whitened[$0] }
        let psNorm = conjugatePath.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let hsigThreshold = (1 - pow(1 - cs, 2 * Double(generation + 1))).squareRoot() * chiN * (1.4 + 2 / (n + 1))
        let hsig: Double = psNorm < hsigThreshold ? 1 : 0
        evolutionPath = (0..<dimension).map { (1 - cc) * evolutionPath[$0] + hsig * (cc * (2 - cc) * muEff).squareRoot() * yw[$0] }
        let a1 = c1, aMu = cMu
        let ys = order.prefix(parentCount).map { index in (0..<dimension).map { (candidates[index][$0] - old[$0]) / sigma } }
        for i in 0..<dimension {
            for j in 0..<dimension {
                var rankMu = 0.0
                for (rank, y) in ys.enumerated() { rankMu += w[rank] * y[i] * y[j] }
                let rankOne = evolutionPath[i] * evolutionPath[j] + (1 - hsig) * cc * (2 - cc) * covariance[i * dimension + j]
                covariance[i * dimension + j] = (1 - a1 - aMu) * covariance[i * dimension + j] + a1 * rankOne + aMu * rankMu
            }
        }
        // Keep C exactly symmetric, then refresh its decomposition.
        for i in 0..<dimension { for j in 0..<i { covariance[i * dimension + j] = covariance[j * dimension + i] } }
        sigma *= exp((cs / dSigma) * (psNorm / chiN - 1))
        let decomposition = SymmetricEigen.decompose(covariance, n: dimension)
        basis = decomposition.vectors
        scales = decomposition.values.map { max($0, 1e-300).squareRoot() }
        generation += 1
    }
}
