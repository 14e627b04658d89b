import MergeEngine
@testable import Adaptive

/// The independent computation the adaptive tests compare against: ΔW = weight(module)·s·B·A of every module of
/// an adapter, dense [out·in] in Float64 by a triple loop.
func denseUpdates(_ adapter: LoadedAdapter, weight: (String) -> Double = { _ in 1 }) throws -> [String: [Double]] {
    var result: [String: [Double]] = [:]
    for (name, entry) in try AdapterSimilarity.terms(adapter) {
        let (term, out, inFeatures) = (entry.term, entry.out, entry.in)
        var matrix = [Double](repeating: 0, count: out * inFeatures)
        for row in 0..<out {
            for column in 0..<inFeatures {
                var sum = 0.0
                for k in 0..<term.rank { sum += Double(term.b[row * term.rank + k]) * Double(term.a[k * inFeatures + column]) }
                matrix[row * inFeatures + column] = weight(name) * term.coefficient * sum
            }
        }
        result[name] = matrix
    }
    return result
}
