import AdapterIO
import BrickyardTestSupport
import Foundation
import MergeEngine
import Testing
@testable import Adaptive

private let fixtures = PeftTinyFixtures.root.appendingPathComponent("adapters").path

@Suite("Similarity selection")
struct SimilarityTests {
    @Test("cosines from Gram matrices equal the dense ΔW cosines (real PEFT adapters, shared and missing modules)")
    func gramEqualsDense() throws {
        let names = ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"]
        let pool = try names.map { LoadedAdapter(try PeftAdapter.load(path: fixtures + "/" + $0)) }
        let target = pool[1]
        let cosines = try AdapterSimilarity.cosines(pool: pool, target: target)
        let targetDense = try denseUpdates(target)
        let targetNorm = targetDense.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
        for (index, adapter) in pool.enumerated() {
            let own = try denseUpdates(adapter)
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
