import AdapterIO
import Foundation
import MergeEngine
import Testing
@testable import Adaptive

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/peft-tiny/adapters").path

/// ΔW = s·B·A of every module, dense, in Float64 (the independent computation).
private func dense(_ adapter: LoadedAdapter) throws -> [String: [Double]] {
    var result: [String: [Double]] = [:]
    for (name, entry) in try AdapterSimilarity.terms(adapter) {
        let (term, out, inFeatures) = (entry.term, entry.out, entry.in)
        var matrix = [Double](repeating: 0, count: out * inFeatures)
        for row in 0..<out {
            for column in 0..<inFeatures {
                var sum = 0.0
                for k in 0..<term.rank { sum += Double(term.b[row * term.rank + k]) * Double(term.a[k * inFeatures + column]) }
                matrix[row * inFeatures + column] = term.coefficient * sum
            }
        }
        result[name] = matrix
    }
    return result
}

@Suite("Similarity selection")
struct SimilarityTests {
    @Test("cosines from Gram matrices equal the dense ΔW cosines (real PEFT adapters, shared and missing modules)")
    func gramEqualsDense() throws {
        let names = ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"]
        let pool = try names.map { LoadedAdapter(try PeftAdapter.load(path: fixtures + "/" + $0)) }
        let target = pool[1]
        let cosines = try AdapterSimilarity.cosines(pool: pool, target: target)
        let targetDense = try dense(target)
        let targetNorm = targetDense.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
        for (index, adapter) in pool.enumerated() {
            let own = try dense(adapter)
            var dot = 0.0, norm = 0.0
            for (name, matrix) in own {
                norm += matrix.reduce(0) { $0 + $1 * $1 }
                if let other = targetDense[name], other.count == matrix.count { dot += zip(matrix, other).reduce(0) { $0 + $1.0 * $1.1 } }
            }
            let expected = dot / (norm * targetNorm).squareRoot()
            #expect(abs(cosines[index] - expected) < 1e-5, "\(names[index]): \(cosines[index]) vs dense \(expected)")
        }
        #expect(abs(cosines[1] - 1) < 1e-6)
    }
}
