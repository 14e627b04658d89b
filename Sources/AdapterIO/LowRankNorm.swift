/// ‖s·B·A‖_F without forming B·A: ‖sBA‖_F² = s² · Σ_ij (BᵀB)_ij (AAᵀ)_ij, two r×r Gram matrices.
public enum LowRankNorm {
    /// A row-major [rank, in], B row-major [out, rank]; accumulates in Double in a fixed order.
    public static func frobenius(a: [Float], b: [Float], rank: Int, inFeatures: Int, outFeatures: Int, scaling: Double) -> Double {
        guard rank > 0, a.count == rank * inFeatures, b.count == outFeatures * rank else { return .nan }
        var gramA = [Double](repeating: 0, count: rank * rank)
        var gramB = [Double](repeating: 0, count: rank * rank)
        a.withUnsafeBufferPointer { a in
            for i in 0..<rank {
                for j in i..<rank {
                    var sum = 0.0
                    for col in 0..<inFeatures { sum += Double(a[i * inFeatures + col]) * Double(a[j * inFeatures + col]) }
                    gramA[i * rank + j] = sum
                    gramA[j * rank + i] = sum
                }
            }
        }
        b.withUnsafeBufferPointer { b in
            for row in 0..<outFeatures {
                for i in 0..<rank {
                    let bi = Double(b[row * rank + i])
                    for j in 0..<rank { gramB[i * rank + j] += bi * Double(b[row * rank + j]) }
                }
            }
        }
        var total = 0.0
        for index in 0..<(rank * rank) { total += gramA[index] * gramB[index] }
        return abs(scaling) * max(total, 0).squareRoot()
    }
}
