import CSIMD

/// The norms lego's steps need of every unit, from one visit of each row: `norms` = ‖x‖ by `nrm2` (the value the
/// k-means distances square, `SignInvariantKMeans.rowNormsSquared`, and `ClusterStatistics` sums, with the same
/// bits) and `exactSquares` = Σ_j x_j² in Double (`LloydBounds`' exact norms, `brickyard_sum_squares`).
///
/// Why: the three used to read the whole unit matrix once each (a few percent of a 64-adapter merge); here the
/// second sum reads a row the first just brought into cache, and the callers take the values instead of a pass.
public struct UnitNorms: Sendable, Equatable {
    /// Double(nrm2(x_i)) per unit.
    public private(set) var norms: [Double] = []
    /// norms[i]²: the ‖x‖² of the k-means distances (the bits of `SignInvariantKMeans.rowNormsSquared`).
    public private(set) var squares: [Double] = []
    /// Σ_j x_ij² accumulated in Double (the bits of `LloydBounds.exactNormsSquared`).
    public private(set) var exactSquares: [Double] = []

    public var count: Int { norms.count }

    public init() {}

    /// The norms of the `count` rows of a row-major [count, dimension] matrix.
    public static func of(_ matrix: [Float], count: Int, dimension: Int) -> UnitNorms {
        var result = UnitNorms()
        matrix.withUnsafeBufferPointer { m in
            guard let m = m.baseAddress, matrix.count >= count * dimension else { return }
            result.append(rows: m, count: count, dimension: dimension)
        }
        return result
    }

    /// Appends the norms of `count` rows starting at `rows` (row stride `dimension`), e.g. a term's units right after
    /// they were written.
    public mutating func append(rows: UnsafePointer<Float>, count: Int, dimension: Int) {
        norms.reserveCapacity(norms.count + count)
        squares.reserveCapacity(squares.count + count)
        exactSquares.reserveCapacity(exactSquares.count + count)
        for i in 0..<max(0, count) {
            let row = rows + i * dimension
            let norm = Double(BLAS.nrm2(dimension, row))
            norms.append(norm)
            squares.append(norm * norm)
            exactSquares.append(dimension > 0 ? brickyard_sum_squares(row, dimension) : 0)
        }
    }
}
