@testable import Kernels
@testable import MergeEngine

/// Task-like pools for lego's small-pool tests: 3 rank-r adapters (coefficients 1/3) with spectra decaying by 0.7
/// per rank, the middle one `weakStrength` times as strong, whose A halves share part of one 6-dimensional input
/// subspace — as the task LoRAs of bench-quality do.
enum TaskLikePools {
    static func terms(random: inout DeterministicRandom, out: Int, inFeatures: Int, rank r: Int,
                      weakStrength: Double) -> [LoraTerm] {
        let shared = (0..<(6 * inFeatures)).map { _ in random.nextGaussian() }
        return (0..<3).map { t in
            let strength = t == 1 ? weakStrength : 1.0
            var b = [Float](repeating: 0, count: out * r), a = [Float](repeating: 0, count: r * inFeatures)
            for j in 0..<r {
                let s = strength * (0..<j).reduce(1.0) { p, _ in p * 0.7 }
                for row in 0..<out { b[row * r + j] = Float(s * random.nextGaussian()) }
                let mix = (0..<6).map { _ in random.nextGaussian() }
                for c in 0..<inFeatures {
                    let common = (0..<6).reduce(0.0) { $0 + mix[$1] * shared[$1 * inFeatures + c] }
                    a[j * inFeatures + c] = Float(0.7 * common / 6.0.squareRoot() + 0.7 * random.nextGaussian())
                }
            }
            return LoraTerm(coefficient: 1.0 / 3, rank: r, a: a, b: b)
        }
    }
}
